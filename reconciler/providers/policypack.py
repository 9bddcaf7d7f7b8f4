"""PolicyPack: the rules that gate every other change, so changing them is always high risk."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class PolicyPackProvider(RecordProvider):
    kind = "PolicyPack"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        return "high"
