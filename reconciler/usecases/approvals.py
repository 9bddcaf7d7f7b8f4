"""`approvals list|show|approve|deny|verify`: review gated changes and sign verdicts on them.

Each function finds the workspace containing `path`, calls the review engine
(`reconciler.engine.review`) and returns what the front end renders. Why a record does not
count is a typed `Reason` (`reconciler.approvals.validity`): branch on `reason.kind`, show
`reason.text`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from reconciler.approvals.records import Record, Verdict
from reconciler.approvals.validity import Reason
from reconciler.engine import review
from reconciler.engine.review import Finding, Gate, Listed
from reconciler.engine.revision import uncommitted_records
from reconciler.errors import ClonedError, ExitCode, UsageError
from reconciler.load.files import find_root

MAX_TTL_DAYS = 365
"""The longest an approval may stay valid: a year."""

DENIAL_TTL_DAYS = 7.0
"""A denial's `expires_at` (a denial never lapses: it blocks until the change changes)."""

SETTLED = ("superseded", "approved")
"""Recorded statuses the text listing hides without `--all`."""


def request_json(item: Listed) -> dict[str, Any]:
    """One request as `list --json` and `show --json` print it (specs/approval-record.md)."""
    request = item.request
    verdicts = item.evaluation.verdicts if item.evaluation else ()
    return {
        "id": request.id,
        "address": request.address,
        "action": request.action,
        "change_hash": request.change_hash,
        "status": item.status,
        "rule": request.rules[0].id if request.rules else None,
        "rules": [rule.to_json() for rule in request.rules],
        "author": request.author,
        "created_at": request.created_at,
        "superseded_by": request.superseded_by,
        "missing": list(item.missing),
        "approvals": [
            {
                "approver": v.record.approver,
                "verdict": v.record.verdict,
                "signed_at": v.record.signed_at,
                "expires_at": v.record.expires_at,
                "counts": v.counts,
                "reason": v.reason.text if v.reason is not None else None,
                "file": v.path,
            }
            for v in verdicts
        ],
    }


@dataclass(frozen=True)
class RequestList:
    """Every approval request with its status judged now (none before the first apply)."""

    requests: tuple[Listed, ...]
    include_all: bool = False
    exit_code: ExitCode = ExitCode.OK

    @property
    def shown(self) -> tuple[Listed, ...]:
        """What the text listing shows: without `include_all`, not what is settled
        (superseded, or approved and applied). A request whose records approve it but that no
        apply has used yet is shown, as approved."""
        if self.include_all:
            return self.requests
        return tuple(item for item in self.requests if item.request.status not in SETTLED)

    def to_json(self) -> list[dict[str, Any]]:
        """Every request, settled ones included, whatever `include_all` says."""
        return [request_json(item) for item in self.requests]


def list_requests(*, path: Path, include_all: bool = False) -> RequestList:
    """The approval requests of the workspace containing `path`."""
    return RequestList(tuple(review.list_requests(find_root(path))), include_all)


@dataclass(frozen=True)
class RequestShown:
    """One request: the change, the rules that gate it, and every verdict so far."""

    item: Listed
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return request_json(self.item)


def show_request(*, path: Path, request_id: str) -> RequestShown:
    """The request whose id starts with `request_id` (which must name exactly one)."""
    listed = review.list_requests(find_root(path))
    matches = [item for item in listed if item.request.id.startswith(request_id)]
    if len(matches) != 1:
        raise ClonedError(
            f'no approval request "{request_id}"' if not matches else f'"{request_id}" is ambiguous'
        )
    return RequestShown(matches[0])


@dataclass(frozen=True)
class SignedVerdict:
    """A verdict signed and written under `.cloned/approvals/`, to be committed by the signer."""

    record: Record
    path: Path
    notes: tuple[Reason, ...]  # why it does not count for some of the change's rules
    base: str | None  # the branch's base, when signed for a pull request
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The record as written, its file and the rules it does not count for."""
        return {
            "record": self.record.to_json(),
            "file": str(self.path),
            "notes": [{"kind": note.kind, "text": note.text} for note in self.notes],
        }


def approve(
    *,
    path: Path,
    request_id: str,
    key: str,
    comment: str = "",
    ttl_days: float = 7.0,
    base: str | None = None,
) -> SignedVerdict:
    """Sign an approval of the request (or, with `base` or without the state database, the
    planned gated change) whose id starts with `request_id`, valid for `ttl_days`."""
    if not math.isfinite(ttl_days) or not 0 < ttl_days <= MAX_TTL_DAYS:
        raise UsageError(
            f"--ttl-days: must be a number of days, more than 0 and at most {MAX_TTL_DAYS}"
        )
    return _sign(path, request_id, key, "approve", comment, ttl_days, base)


def deny(
    *, path: Path, request_id: str, key: str, comment: str = "", base: str | None = None
) -> SignedVerdict:
    """Sign a denial: the change stays blocked until it changes (or the denial is removed)."""
    return _sign(path, request_id, key, "deny", comment, DENIAL_TTL_DAYS, base)


def _sign(
    path: Path,
    request_id: str,
    key: str,
    verdict: Verdict,
    comment: str,
    ttl_days: float,
    base: str | None,
) -> SignedVerdict:
    signed = review.sign(
        find_root(path),
        request_id=request_id,
        key=key,
        verdict=verdict,
        comment=comment,
        ttl=timedelta(days=ttl_days),
        base=base,
    )
    return SignedVerdict(signed.record, signed.path, signed.notes, base)


@dataclass(frozen=True)
class Verification:
    """`approvals verify`: every record file judged, and (with a base) every gated change of
    the branch's plan. `uncommitted` lists record files a base check could not see."""

    sound: int
    lapsed: tuple[Finding, ...]  # expired or spent (with a base, also stale): not errors
    invalid: tuple[Finding, ...]
    trust_source: str
    base: str | None = None
    gates: tuple[Gate, ...] | None = None  # with a base
    forbidden: tuple[str, ...] | None = None  # with a base
    uncommitted: tuple[str, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        """1 for an invalid record; with a base, 4 when a change is denied or forbidden and 3
        when one still needs approval; else 0."""
        if self.invalid:
            return ExitCode.ERROR
        if self.forbidden or any(g.status == "denied" for g in self.gates or ()):
            return ExitCode.POLICY_DENIED
        if any(g.status != "approved" for g in self.gates or ()):
            return ExitCode.APPROVALS_PENDING
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "valid": not self.invalid,
            "sound": self.sound,
            "expired": [f.problem.to_json() for f in self.lapsed],
            "problems": [f.problem.to_json() for f in self.invalid],
        }
        if self.gates is not None:
            payload["changes"] = [
                {
                    "address": g.address,
                    "request": g.request,
                    "status": g.status,
                    "approved_by": list(g.approved_by),
                    "missing": list(g.missing),
                }
                for g in self.gates
            ]
            payload["forbidden"] = list(self.forbidden or ())
        payload["exit_code"] = int(self.exit_code)
        return payload


def verify(*, path: Path, base: str | None = None) -> Verification:
    """Check every approval record of the workspace containing `path`; with `base`, the
    records HEAD's commit adds against REF's approvers, and the branch's gated changes."""
    root = find_root(path)
    verified = review.verify(root, base=base)
    waiting = tuple(uncommitted_records(root)) if base is not None else ()
    return Verification(
        verified.sound,
        verified.lapsed,
        verified.invalid,
        verified.trust_source,
        base,
        verified.gates,
        verified.forbidden,
        waiting,
    )
