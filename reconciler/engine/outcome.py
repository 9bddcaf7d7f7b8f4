"""What happened to each change of an apply, and the words every report uses for it (the apply
output, the audit commit's message, the reconcile loop's status)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Status = Literal["applied", "pending", "denied", "blocked", "skipped", "failed"]

STATUS_WORDS: dict[str, str] = {
    "applied": "applied",
    "pending": "awaiting approval",
    "denied": "forbidden by policy",
    "blocked": "denied by an approver",
    "skipped": "skipped",
    "failed": "FAILED",
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one change."""

    address: str
    action: str
    status: Status
    detail: str = ""
    request_id: str | None = None


def count(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many outcomes of each status, in the order the statuses first occur."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def describe_counts(counts: dict[str, int]) -> str:
    """`2 applied, 1 awaiting approval`: outcome counts in the words every report uses."""
    return ", ".join(f"{n} {STATUS_WORDS.get(status, status)}" for status, n in counts.items())
