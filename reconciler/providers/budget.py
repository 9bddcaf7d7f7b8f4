"""Budget: spending limits. Lowering one is low risk; raising or removing one is medium."""

from __future__ import annotations

from reconciler.plan.types import ABSENT, Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class BudgetProvider(RecordProvider):
    kind = "Budget"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action == "create":
            return "low"
        if action in ("delete", "replace"):
            return "medium"
        return "medium" if any(_loosens(change) for change in diff) else "low"


def _loosens(change: FieldDiff) -> bool:
    """A limit raised or removed (no limit means unlimited), or the scope moved."""
    if change.path.startswith("spec.limits."):
        if change.after is ABSENT:
            return True
        if change.before is ABSENT:
            return False
        return bool(change.after > change.before)
    return change.path.startswith(("spec.scope", "spec.onExceed", "spec.period"))
