"""What happened to each change of an apply, and the words every report uses for it (the apply
output, the audit commit's message, the reconcile loop's status)."""

from __future__ import annotations

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
