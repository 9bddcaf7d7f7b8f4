"""`budgets status`: each applied Budget's use against each of its limits, this period.

Reads the applied state and the `usage` table the governed call path counts in; the period
is the one that holds now (`reconciler.clock.now`, so `CLONED_NOW` fixes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.clock import now
from reconciler.errors import ClonedError, ExitCode
from reconciler.governed.applied import AppliedBudget, read_applied
from reconciler.load.files import find_root
from reconciler.state import usage
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class LimitUse:
    """One limit of a budget and how much of it this period used."""

    name: str  # calls | wall_seconds | tokens | cost_usd
    limit: float
    used: float

    @property
    def left(self) -> float:
        """What is left of the limit this period."""
        return max(0.0, self.limit - self.used)

    def to_json(self) -> dict[str, Any]:
        def number(value: float) -> float | int:
            return int(value) if float(value).is_integer() else round(value, 6)

        return {
            "limit": number(self.limit),
            "used": number(self.used),
            "left": number(self.left),
        }


@dataclass(frozen=True)
class BudgetUse:
    """One budget this period."""

    name: str
    scope: str
    period: str
    period_key: str
    on_exceed: str
    limits: tuple[LimitUse, ...]

    @property
    def exhausted(self) -> bool:
        """Whether some limit has nothing left (the next call is refused or needs approval)."""
        return any(limit.used >= limit.limit for limit in self.limits)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "period": self.period,
            "period_key": self.period_key,
            "onExceed": self.on_exceed,
            "exhausted": self.exhausted,
            "limits": {limit.name: limit.to_json() for limit in self.limits},
        }


@dataclass(frozen=True)
class BudgetStatus:
    """Every applied budget's use this period, by name."""

    budgets: tuple[BudgetUse, ...]
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"budgets": [budget.to_json() for budget in self.budgets]}


def status(*, path: Path) -> BudgetStatus:
    """The use of each applied Budget of the workspace containing `path`, this period."""
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            raise ClonedError("nothing is applied yet", hint="run `cloned apply` first")
        view = read_applied(db)
        moment = now()
        return BudgetStatus(tuple(_use(db, budget, moment) for budget in view.budgets))


def _use(db: StateDB, budget: AppliedBudget, moment: datetime) -> BudgetUse:
    key = usage.period_key(budget.period, moment)
    used = usage.get(db.reader, budget.name, key)
    limits = budget.spec.limits
    found = []
    if limits.calls is not None:
        found.append(LimitUse("calls", limits.calls, used.calls))
    if limits.wall_seconds is not None:
        found.append(LimitUse("wall_seconds", limits.wall_seconds, used.wall_ms / 1000))
    if limits.tokens is not None:
        found.append(LimitUse("tokens", limits.tokens, used.tokens))
    if limits.cost_usd is not None:
        found.append(LimitUse("cost_usd", limits.cost_usd, used.cost_micros / 1_000_000))
    return BudgetUse(
        budget.name, _scope(budget), budget.period, key, budget.on_exceed, tuple(found)
    )


def _scope(budget: AppliedBudget) -> str:
    scope = budget.spec.scope
    if scope.workspace:
        return "workspace"
    if scope.connector is not None:
        return f"connector {scope.connector}"
    return f"pipeline {scope.pipeline}"
