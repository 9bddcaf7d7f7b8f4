"""Rows of the `usage` table: how much of each Budget one period has used (calls, wall time,
tokens, cost). The governed call path reads and adds to them inside one `BEGIN IMMEDIATE`
transaction, so a limit of N calls allows exactly N across concurrent calls and processes.

A period is named by its key: a day `2026-12-01`, an ISO week `2026-W49`, a month `2026-12`,
worked out from the injected clock's `now()` in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.state.db import Connection

PERIODS = ("day", "week", "month")


def period_key(period: str, moment: datetime) -> str:
    """The key of the `period` (day, week or month) that holds `moment` (taken in UTC)."""
    at = moment.astimezone(UTC)
    if period == "day":
        return at.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return at.strftime("%Y-%m")
    raise ValueError(f"unknown budget period {period!r} (day, week or month)")


@dataclass(frozen=True)
class Use:
    """What one budget has used in one period."""

    budget: str
    period: str
    calls: int = 0
    wall_ms: int = 0
    tokens: int = 0
    cost_micros: int = 0

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (`budgets status --json`)."""
        return {
            "budget": self.budget,
            "period": self.period,
            "calls": self.calls,
            "wall_ms": self.wall_ms,
            "tokens": self.tokens,
            "cost_micros": self.cost_micros,
        }


_SELECT = "SELECT budget, period, calls, wall_ms, tokens, cost_micros FROM usage "


def get(connection: Connection, budget: str, period: str) -> Use:
    """The use of `budget` in `period` (zero when nothing was counted yet)."""
    row = connection.execute(
        _SELECT + "WHERE budget = ? AND period = ?", (budget, period)
    ).fetchone()
    return Use(*row) if row is not None else Use(budget, period)


def add(
    connection: Connection,
    budget: str,
    period: str,
    *,
    calls: int = 0,
    wall_ms: int = 0,
    tokens: int = 0,
    cost_micros: int = 0,
) -> None:
    """Count more use (negative to give back a reservation), inside the caller's transaction."""
    connection.execute(
        "INSERT INTO usage (budget, period, calls, wall_ms, tokens, cost_micros) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (budget, period) DO UPDATE SET "
        "calls = calls + excluded.calls, wall_ms = wall_ms + excluded.wall_ms, "
        "tokens = tokens + excluded.tokens, cost_micros = cost_micros + excluded.cost_micros",
        (budget, period, calls, wall_ms, tokens, cost_micros),
    )


def all_uses(connection: Connection) -> list[Use]:
    """Every row, by budget then period."""
    cursor = connection.execute(_SELECT + "ORDER BY budget, period")
    return [Use(*row) for row in cursor.fetchall()]
