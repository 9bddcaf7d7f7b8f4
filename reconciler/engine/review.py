"""Reviewing approvals (`cloned approvals`): list requests, sign a verdict, verify the records."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from reconciler import keys
from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.records import RECORD_FORMAT_VERSION, Record, Verdict
from reconciler.approvals.validity import (
    EARLIER_VERSION,
    NOT_NEEDED,
    Approver,
    Authorship,
    Evaluation,
    Panel,
    Reason,
    Spent,
    Subject,
    approvers_of,
    evaluate,
    not_counted_for,
    record_problem,
)
from reconciler.clock import now, stamp
from reconciler.engine import actual as actual_state
from reconciler.engine import authorship
from reconciler.engine import revision as revisions
from reconciler.engine.journal import Journal
from reconciler.engine.planner import content_digest
from reconciler.engine.preview import Preview, preview, spent_in, spent_in_tree
from reconciler.engine.session import open_session
from reconciler.errors import ClonedError, Problem
from reconciler.load.typed import applied_model
from reconciler.plan.types import Change, RuleRef
from reconciler.policy.engine import build_policy
from reconciler.redact import Redactor, active
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class Trust:
    """What judging records needs: the applied Workspace's name and approvers, where they come
    from, the redactor for audit events, and the approvals applies already used."""

    workspace: str
    approvers: dict[str, Approver]
    source: str
    redactor: Redactor
    spent: Spent
    applied: dict[str, str] = field(default_factory=dict)  # address -> applied YAML content digest

    @classmethod
    def of_preview(cls, previewed: Preview) -> Trust:
        """The judges of a plan preview: its session's applied Workspace and spent records."""
        session = previewed.session
        return cls(
            session.workspace,
            session.approvers,
            session.policy.source,
            session.redactor,
            previewed.spent,
            {address: content_digest(r.state) for address, r in session.actual.resources.items()},
        )


def trust(root: Path, db: StateDB | None) -> Trust:
    """The applied Workspace, from the state database (else the working tree's cloned.lock),
    without reading the desired state: reviewing does not stop at an invalid YAML file
    elsewhere. Only at bootstrap (nothing applied) is the desired Workspace read."""
    actual = actual_state.from_db(db) if db is not None else actual_state.from_lock(root)
    spent = spent_in(db) if db is not None else spent_in_tree(root)
    digests = {address: content_digest(r.state) for address, r in actual.resources.items()}
    applied = next((r for r in actual.resources.values() if r.kind == "Workspace"), None)
    if applied is None:
        session = open_session(root, db)
        return Trust(
            session.workspace,
            session.approvers,
            session.policy.source,
            session.redactor,
            spent,
            digests,
        )
    where = "state database" if actual.source == "state" else "cloned.lock"
    label = f"the applied state ({where})"
    workspace = applied_model("Workspace", applied.name, applied.state, source=label)
    packs = {r.name: r.state for r in actual.resources.values() if r.kind == "PolicyPack"}
    policy = build_policy(workspace.spec.policy_packs, packs, source=label)
    redactor = active()
    redactor.add_patterns(policy.redaction_patterns)
    return Trust(applied.name, approvers_of(workspace), policy.source, redactor, spent, digests)


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


def list_requests(root: Path) -> list[Listed]:
    """Every request, each with its status judged now (none before the first apply)."""
    with StateDB.existing(root) as db:
        if db is None:
            return []
        trusted = trust(root, db)
        found, _ = approval_records.read_all(root)
        out = []
        for request in requests.all_requests(db):
            evaluation = _judge(trusted, Target.of_request(root, trusted, request), found)
            # Applied and superseded requests keep their recorded status; the evaluation still
            # shows who approved.
            final = request.status in ("superseded", "approved")
            out.append(Listed(request, request.status if final else evaluation.status, evaluation))
        return out


@dataclass(frozen=True)
class Signed:
    """A verdict written to disk, and why it does not count for some rules (if it does not)."""

    record: Record
    path: Path
    notes: tuple[Reason, ...]


@dataclass(frozen=True)
class Target:
    """What a verdict is about: a stored request, or a gated change of a plan."""

    id: str
    change_hash: str
    address: str
    rules: tuple[RuleRef, ...]
    author: Authorship

    @classmethod
    def of_request(cls, root: Path, trusted: Trust, request: requests.Request) -> Target:
        author = authorship.for_request(
            root,
            trusted.approvers,
            address=request.address,
            action=request.action,
            origin=str(request.change.get("origin", "")),
            rules=request.rules,
            applied=trusted.applied.get(request.address),
            paths=tuple(
                str(entry.get("path", "")) for entry in request.diff if isinstance(entry, dict)
            ),
        )
        return cls(request.id, request.change_hash, request.address, request.rules, author)

    @classmethod
    def of_change(cls, previewed: Preview, change: Change) -> Target:
        return cls(
            requests.request_id(change.change_hash),
            change.change_hash,
            change.address,
            change.decision.requirements,
            previewed.author(change),
        )


def sign(
    root: Path,
    *,
    request_id: str,
    key: str,
    verdict: Verdict,
    comment: str,
    ttl: timedelta,
    base: str | None = None,
) -> Signed:
    """Sign and write one approver's verdict on a request; refuse what could never count.

    With the state database (and no `base`), the request is the one apply opened. Without it
    (a reviewer's clone of a pull request), or with `base`, the request is the gated change of
    the plan (`cloned plan [--base REF]`) whose id it is: ids derive from change hashes, so
    apply later opens the very same request and finds the record."""
    signer = keys.load_signer(key)
    with StateDB.existing(root) if base is None else nullcontext() as db:
        trusted, target = _what_to_sign(root, db, request_id, base)
        approver = _approver_of(trusted, signer.public_key)
        record = _signed_record(signer, trusted, target, approver.name, verdict, comment, ttl)
        # Refuse what could never count. A change whose author is not known yet (its commit
        # is not signed, or not made) may become known, so that alone refuses nothing: the
        # record is written, with a note.
        known = target if target.author.unknown is None else replace(target, author=NOT_NEEDED)
        judged = _judge(trusted, known, [("(new)", record)])
        reasons = [v.reason for v in judged.verdicts if v.reason]
        if reasons:
            raise ClonedError(f"this {verdict} could not count: {reasons[0].text}")
        path = approval_records.write(root, record)
        if db is not None:
            with db.transaction() as connection:
                Journal(approver.name, trusted.redactor).record(
                    connection,
                    "approval.granted" if verdict == "approve" else "approval.denied",
                    target.address,
                    {
                        "request": target.id,
                        "change_hash": target.change_hash,
                        "comment": record.comment,
                    },
                )
    notes = not_counted_for(record, target.rules, target.author, trusted.approvers)
    return Signed(record, path, tuple(notes))


def _what_to_sign(
    root: Path, db: StateDB | None, request_id: str, base: str | None
) -> tuple[Trust, Target]:
    """Who judges and what is signed: the request apply opened (with the state database), or
    the gated change of the plan against `base` (or the committed lock) whose id it is."""
    if db is not None:
        trusted = trust(root, db)
        request = requests.find(db, request_id)
        if request.status == "superseded":
            raise ClonedError(
                f"request {request.id} was superseded by {request.superseded_by}: the "
                "change changed since; review and approve the new request"
            )
        return trusted, Target.of_request(root, trusted, request)
    previewed = preview(root, base=base)
    return Trust.of_preview(previewed), _planned(previewed, request_id)


def _approver_of(trusted: Trust, public_key: str) -> Approver:
    """The applied approver whose key this is; refused when there is none."""
    for approver in trusted.approvers.values():
        if keys.same_key(approver.public_key, public_key):
            return approver
    raise ClonedError(
        "--key: this key is not an approver in the applied Workspace "
        f"{trusted.workspace!r} ({trusted.source})",
        hint="an admin must add it under spec.approvers and apply that change first",
    )


def _signed_record(
    signer: keys.Signer,
    trusted: Trust,
    target: Target,
    approver: str,
    verdict: Verdict,
    comment: str,
    ttl: timedelta,
) -> Record:
    """The verdict as a signed record, refused (`--comment`) when it outgrows a record file."""
    moment = now()
    record = Record(
        format_version=RECORD_FORMAT_VERSION,
        verdict=verdict,
        workspace=trusted.workspace,
        request_id=target.id,
        change_hash=target.change_hash,
        address=target.address,
        approver=approver,
        public_key=signer.public_key,
        signed_at=stamp(moment),
        expires_at=stamp(moment + ttl),
        # The record is committed to git: a secret pasted into a comment must not be.
        comment=trusted.redactor.text(comment),
    )
    record = Record(**{**record.to_json(), "signature": signer.sign(record.signed_payload())})
    size = len(approval_records.render(record))
    if size > approval_records.MAX_RECORD_BYTES:
        raise ClonedError(
            f"--comment: the record would be {size:,} bytes, over the "
            f"{approval_records.MAX_RECORD_BYTES:,}-byte limit of a record file; "
            "shorten the comment"
        )
    return record


def _planned(previewed: Preview, request_id: str) -> Target:
    """The gated change of the plan whose request id starts with `request_id`."""
    gated = [c for c in previewed.plan.changes if c.decision.kind == "approval"]
    matches = [c for c in gated if requests.request_id(c.change_hash).startswith(request_id)]
    where = f" against {previewed.base.describe()}" if previewed.base else ""
    if not request_id or not matches:
        ids = ", ".join(requests.request_id(c.change_hash) for c in gated) or "none"
        raise ClonedError(
            f"no change in the plan{where} has request id {request_id!r} (gated changes: {ids})",
            hint="`cloned plan` lists each gated change's request id",
        )
    if len(matches) > 1:
        raise ClonedError(f"request id {request_id!r} is ambiguous; give more digits")
    change = matches[0]
    return Target.of_change(previewed, change)


def _judge(trusted: Trust, target: Target, found: list[tuple[str, Record]]) -> Evaluation:
    subject = Subject(target.id, target.change_hash, target.rules, target.author)
    panel = Panel(trusted.workspace, trusted.approvers, trusted.spent)
    return evaluate(subject, panel, found, now=now())


@dataclass(frozen=True)
class Gate:
    """A gated change of the plan under review, and its approvals so far."""

    address: str
    request: str
    status: str  # approved | pending | expired | denied
    approved_by: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """A record file that does not count, and why: `reason.kind` says which check failed;
    `then` ends the line people read ("; it no longer counts") for one that only lapsed."""

    path: str
    reason: Reason
    then: str = ""

    @property
    def problem(self) -> Problem:
        """The finding as every problem is reported (`PATH: message`, `--json`'s objects)."""
        return Problem(self.path, 0, 0, self.reason.text + self.then)


def _malformed(problems: list[Problem]) -> list[Finding]:
    """Files that are no valid record (every such problem is `PATH: message`, no position)."""
    return [Finding(p.path, Reason("malformed", p.message)) for p in problems]


@dataclass(frozen=True)
class Verified:
    """`approvals verify`: sound records, records that lapsed or went stale, invalid ones, and
    (with a base) every gated change of the branch's plan."""

    sound: int
    lapsed: tuple[Finding, ...]
    invalid: tuple[Finding, ...]
    trust_source: str  # where approvers came from: the state database, cloned.lock, or .cloned/
    gates: tuple[Gate, ...] | None = None
    forbidden: tuple[str, ...] | None = None


def verify(root: Path, *, base: str | None = None) -> Verified:
    """Check every record file. Expired approvals no longer count but are not wrong; anything
    forged, misattributed or ineligible is invalid.

    With `base`, check the records HEAD's commit adds or changes relative to `base`, against
    the approvers of `base`'s cloned.lock and the gated changes of HEAD's plan against it."""
    if base is not None:
        return _verify_branch(root, base)
    found, unreadable = approval_records.read_all(root)
    with StateDB.existing(root) as db:
        trusted = trust(root, db)
        known = {r.id: r for r in requests.all_requests(db)} if db is not None else {}
    sound = 0
    lapsed: list[Finding] = []
    invalid = _malformed(unreadable)
    for rel, record in found:
        request = known.get(record.request_id)
        reason: Reason | None
        if request is not None and request.change_hash != record.change_hash:
            reason = _reason(trusted, rel, record, None) or OTHER_CHANGE
        else:
            target = Target.of_request(root, trusted, request) if request is not None else None
            reason = _reason(trusted, rel, record, target)
        if reason is None:
            sound += 1
        elif reason.lapsed:
            lapsed.append(Finding(rel, reason, "; it no longer counts"))
        else:
            invalid.append(Finding(rel, reason))
    return Verified(sound, tuple(lapsed), tuple(invalid), trusted.source)


OTHER_CHANGE = Reason("other_change", "it signs a different change than its request")
UNPLANNED = Reason("stale", "it approves no change this branch plans")


def _reason(trusted: Trust, rel: str, record: Record, target: Target | None) -> Reason | None:
    """Why a record does not count: unsound (signature, approver, expiry, spent), or, when
    its change is known, not eligible for that change's rules; None when it counts."""
    reason = record_problem(
        record,
        workspace=trusted.workspace,
        approvers=trusted.approvers,
        now=now(),
        spent=trusted.spent,
    )
    if reason is None and target is not None:
        judged = _judge(trusted, target, [(rel, record)])
        reason = next((v.reason for v in judged.verdicts if v.reason), None)
    return reason


def _verify_branch(root: Path, base: str) -> Verified:
    previewed = preview(root, base=base)
    assert previewed.base is not None
    trusted = Trust.of_preview(previewed)
    before, _ = revisions.records_at(root, previewed.base)
    unchanged = {(rel, record.signature) for rel, record in before}
    added = [(rel, r) for rel, r in previewed.records if (rel, r.signature) not in unchanged]
    invalid = _malformed(previewed.record_problems)
    planned = {c.change_hash: c for c in previewed.plan.changes if c.decision.kind == "approval"}
    by_address = {c.address: c for c in planned.values()}
    sound = 0
    lapsed: list[Finding] = []
    for rel, record in added:
        change = planned.get(record.change_hash)
        target = Target.of_change(previewed, change) if change is not None else None
        reason = _reason(trusted, rel, record, target)
        stale = None
        if change is None:
            stale = EARLIER_VERSION if record.address in by_address else UNPLANNED
        if reason is None and stale is None:
            sound += 1
        elif reason is not None and not reason.lapsed:
            invalid.append(Finding(rel, reason))
        else:
            why = reason if reason is not None else stale
            assert why is not None
            lapsed.append(Finding(rel, why, "; it does not count"))
    gates = []
    for change in planned.values():
        evaluation = previewed.evaluation(change)
        assert evaluation is not None
        gates.append(
            Gate(
                change.address,
                requests.request_id(change.change_hash),
                evaluation.status,
                evaluation.approved_by,
                evaluation.missing,
            )
        )
    forbidden = tuple(c.address for c in previewed.plan.changes if c.decision.kind == "deny")
    return Verified(sound, tuple(lapsed), tuple(invalid), trusted.source, tuple(gates), forbidden)
