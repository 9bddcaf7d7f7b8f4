"""Workspace: who approves, which policy applies. Any change to it is high risk."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class WorkspaceProvider(RecordProvider):
    kind = "Workspace"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        return "medium" if action == "create" else "high"
