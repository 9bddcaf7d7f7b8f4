"""Reviewing approvals (`cloned approvals`): list requests, sign a verdict, verify the records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from reconciler import keys
from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.records import RECORD_FORMAT_VERSION, Record, Verdict
from reconciler.approvals.validity import Evaluation, evaluate, not_counted_for, record_problem
from reconciler.clock import now, stamp
from reconciler.engine.journal import Journal
from reconciler.engine.session import Session, open_session
from reconciler.errors import ClonedError, Problem
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class Listed:
    """A request with its live evaluation against the records on disk."""

    request: requests.Request
    status: str
    evaluation: Evaluation | None

    @property
    def missing(self) -> tuple[str, ...]:
        """What the request still needs (nothing once applied, superseded or denied)."""
        if self.evaluation is None or self.status not in ("pending", "expired"):
            return ()
        return self.evaluation.missing


def _db(root: Path) -> StateDB:
    db = StateDB.open(root, create=False)
    if db is None:
        raise ClonedError(
            "no state database here, so no approval requests yet",
            hint="`cloned apply` opens a request for each change that needs approval",
        )
    return db


def list_requests(root: Path) -> list[Listed]:
    """Every request, each with its status judged now (none before the first apply)."""
    db = StateDB.open(root, create=False)
    if db is None:
        return []
    try:
        session = open_session(root, db)
        found, _ = approval_records.read_all(root)
        out = []
        for request in requests.all_requests(db):
            evaluation = _evaluate(session, request, found)
            # Applied and superseded requests keep their recorded status; the evaluation still
            # shows who approved.
            final = request.status in ("superseded", "approved")
            out.append(Listed(request, request.status if final else evaluation.status, evaluation))
        return out
    finally:
        db.close()


def _evaluate(
    session: Session, request: requests.Request, found: list[tuple[str, Record]]
) -> Evaluation:
    return evaluate(
        request_id=request.id,
        change_hash=request.change_hash,
        rules=request.rules,
        author=request.author,
        workspace=session.workspace,
        approvers=session.approvers,
        records=found,
        now=now(),
    )


@dataclass(frozen=True)
class Signed:
    """A verdict written to disk, and the rules it does not count for (if any)."""

    record: Record
    path: Path
    notes: tuple[str, ...]


def sign(
    root: Path, *, request_id: str, key: str, verdict: Verdict, comment: str, ttl: timedelta
) -> Signed:
    """Sign and write one approver's verdict on a request; refuse what could never count."""
    signer = keys.load_signer(key)
    db = _db(root)
    try:
        session = open_session(root, db)
        request = requests.find(db, request_id)
        if request.status == "superseded":
            raise ClonedError(
                f"request {request.id} was superseded by {request.superseded_by}: the change "
                "changed since; review and approve the new request"
            )
        approver = next(
            (
                a
                for a in session.approvers.values()
                if keys.same_key(a.public_key, signer.public_key)
            ),
            None,
        )
        if approver is None:
            raise ClonedError(
                "--key: this key is not an approver in the applied Workspace "
                f"{session.workspace!r}",
                hint="an admin must add it under spec.approvers and apply that change first",
            )
        moment = now()
        record = Record(
            format_version=RECORD_FORMAT_VERSION,
            verdict=verdict,
            workspace=session.workspace,
            request_id=request.id,
            change_hash=request.change_hash,
            address=request.address,
            approver=approver.name,
            public_key=signer.public_key,
            signed_at=stamp(moment),
            expires_at=stamp(moment + ttl),
            comment=comment,
        )
        record = Record(**{**record.to_json(), "signature": signer.sign(record.signed_payload())})
        judged = _evaluate(session, request, [("(new)", record)])
        reasons = [v.reason for v in judged.verdicts if v.reason]
        if reasons:
            raise ClonedError(f"this {verdict} could not count: {reasons[0]}")
        path = approval_records.write(root, record)
        journal = Journal(approver.name, session.redactor)
        with db.transaction() as connection:
            journal.record(
                connection,
                "approval.granted" if verdict == "approve" else "approval.denied",
                request.address,
                {"request": request.id, "change_hash": request.change_hash, "comment": comment},
            )
        notes = not_counted_for(record, request.rules, request.author, session.approvers)
        return Signed(record, path, tuple(notes))
    finally:
        db.close()


@dataclass(frozen=True)
class Verified:
    """`approvals verify`: sound records, records that lapsed, and invalid ones."""

    sound: int
    lapsed: list[Problem]
    invalid: list[Problem]
    trust_source: str  # where approvers came from: the state database, cloned.lock, or .cloned/


def verify(root: Path) -> Verified:
    """Check every record file. Expired approvals no longer count but are not wrong; anything
    forged, misattributed or ineligible is invalid."""
    found, invalid = approval_records.read_all(root)
    db = StateDB.open(root, create=False)
    try:
        session = open_session(root, db)
        known = {r.id: r for r in requests.all_requests(db)} if db is not None else {}
    finally:
        if db is not None:
            db.close()
    sound = 0
    lapsed: list[Problem] = []
    for rel, record in found:
        reason = record_problem(
            record, workspace=session.workspace, approvers=session.approvers, now=now()
        )
        request = known.get(record.request_id)
        if reason is None and request is not None and request.change_hash != record.change_hash:
            reason = "it signs a different change than its request"
        if reason is None and request is not None:
            judged = _evaluate(session, request, [(rel, record)])
            reason = next((v.reason for v in judged.verdicts if v.reason), None)
        if reason is None:
            sound += 1
        elif reason.startswith("expired at "):
            lapsed.append(Problem(rel, 0, 0, f"{reason}; it no longer counts"))
        else:
            invalid.append(Problem(rel, 0, 0, reason))
    return Verified(sound, lapsed, invalid, session.policy.source)
