"""Registry: a signed connector registry (a TUF repository) and the sha256 of the root
metadata that bootstraps trust in it. The applied record is all there is: connectors are
verified against the applied (or, in the same plan, the desired) Registry when they are
pinned and installed. Pointing a Registry elsewhere, or at another root, is high risk."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class RegistryProvider(RecordProvider):
    kind = "Registry"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action == "create":
            return "medium"
        if action in ("delete", "replace"):
            return "high"
        return "high" if any(d.path in ("spec.url", "spec.root") for d in diff) else "low"
