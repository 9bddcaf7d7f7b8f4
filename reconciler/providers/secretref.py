"""SecretRef: a named reference into the vault. Only presence is managed for now: the applied
record says the reference exists and who may use it; no value is ever read or stored."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class SecretRefProvider(RecordProvider):
    kind = "SecretRef"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action == "create":
            return "low"
        return "medium"
