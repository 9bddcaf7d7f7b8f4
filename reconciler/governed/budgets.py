"""Budgets on the governed call path: room for one more call, checked and counted before the
call inside the caller's `BEGIN IMMEDIATE` transaction (so N allowed calls are exactly N, over
concurrent calls and processes), and the wall time charged after it.

A call counts against every budget in scope (`AppliedView.budgets_for`); tool calls use calls
and wall time, the limits a call can know before it is made. Use is kept per budget and period
in the `usage` table (`reconciler.state.usage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reconciler.governed.applied import AppliedBudget
from reconciler.state import usage
from reconciler.state.db import Connection


@dataclass(frozen=True)
class Exceeded:
    """A budget with no room for one more call."""

    budget: AppliedBudget
    period: str
    reason: str

    @property
    def rule(self) -> str:
        """The budget as a refusal names it."""
        return f"budget.{self.budget.name}"


@dataclass(frozen=True)
class Charge:
    """A call counted against budgets: (budget name, period key) of each."""

    periods: tuple[tuple[str, str], ...]


def exceeded(
    connection: Connection, budgets: list[AppliedBudget], moment: datetime
) -> list[Exceeded]:
    """The budgets of `budgets` that have no room for one more call at `moment`."""
    found = []
    for budget in budgets:
        period = usage.period_key(budget.period, moment)
        reason = _over(budget, usage.get(connection, budget.name, period))
        if reason is not None:
            found.append(Exceeded(budget, period, reason))
    return found


def _over(budget: AppliedBudget, used: usage.Use) -> str | None:
    limits = budget.spec.limits
    where = f"budget {budget.name} ({budget.period} {used.period})"
    if limits.calls is not None and used.calls >= limits.calls:
        return f"{where}: all {limits.calls} calls used"
    if limits.wall_seconds is not None and used.wall_ms >= limits.wall_seconds * 1000:
        return f"{where}: all {limits.wall_seconds} s of wall time used"
    return None


def charge(connection: Connection, budgets: list[AppliedBudget], moment: datetime) -> Charge:
    """Count one call against each budget, in its period at `moment`."""
    periods = tuple((b.name, usage.period_key(b.period, moment)) for b in budgets)
    for name, period in periods:
        usage.add(connection, name, period, calls=1)
    return Charge(periods)


def refund(connection: Connection, charged: Charge) -> None:
    """Give back a call that was counted but never made (no concurrency slot came free)."""
    for name, period in charged.periods:
        usage.add(connection, name, period, calls=-1)


def charge_wall(connection: Connection, charged: Charge, wall_ms: int) -> None:
    """Charge a made call's wall time to the periods it was counted in."""
    for name, period in charged.periods:
        usage.add(connection, name, period, wall_ms=wall_ms)
