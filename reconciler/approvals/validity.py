"""Whether the approval records on disk let one gated change through.

A record counts only if: its signature verifies; its key is listed, under that approver's name,
by the Workspace as *applied* (so a branch cannot approve itself by adding an approver); it is for
this workspace and this exact change hash; it has not expired; the approver is in a group the
rule accepts; and, where the rule asks, the approver is not the change's author. Each approval
rule must be met on its own; one valid denial blocks the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from reconciler import keys
from reconciler.approvals.records import Record
from reconciler.plan.types import RuleRef

if TYPE_CHECKING:
    from reconciler.model.workspace import Workspace, WorkspaceSpec

Status = Literal["pending", "approved", "denied", "expired", "superseded"]

ReasonKind = Literal[
    "forged",  # the signature does not verify
    "not_approver",  # the signer is not an approver of the applied Workspace
    "wrong_key",  # not the key the applied Workspace lists for that approver
    "other_workspace",  # signed for another workspace
    "bad_expiry",  # expires_at is no valid time
    "expired",  # an approval past its expiry
    "spent",  # an approval an apply already used
    "stale",  # it signs an earlier version of the change, or no change the branch plans
    "other_change",  # it signs another change than the request its id names
    "ineligible",  # the approver is in none of the groups the rule accepts
    "own_change",  # the rule excludes the change's author, and the approver is that author
    "author_unknown",  # the rule excludes the change's author, who is not known
    "no_rule",  # the change has no approval rule to satisfy
    "malformed",  # the file is no valid approval record
]

LAPSED: frozenset[ReasonKind] = frozenset({"expired", "spent"})
"""Reasons of a record that was sound once and lapsed: not wrong, it just no longer counts."""


@dataclass(frozen=True)
class Reason:
    """Why a record does not count: `kind` is what callers branch on, `text` what people read
    (the wording specs/approval-record.md gives)."""

    kind: ReasonKind
    text: str

    @property
    def lapsed(self) -> bool:
        """Expired or spent: listed, never counted, and not an error."""
        return self.kind in LAPSED


Spent = Mapping[str, int]
"""Approval records already used by an apply: record id -> the seq of its `approval.spent`
audit event. An approval authorises one application of its change."""

NO_SPENT: Spent = {}


@dataclass(frozen=True)
class Approver:
    """An approver as the applied Workspace lists them."""

    name: str
    public_key: str
    groups: tuple[str, ...]


def approvers_of(workspace: Workspace) -> dict[str, Approver]:
    """The approvers of an applied (or, at bootstrap, desired) Workspace, by name."""
    return approvers_in(workspace.spec)


def approvers_in(spec: WorkspaceSpec) -> dict[str, Approver]:
    """The approvers a Workspace spec lists, by name (the runtime holds the applied spec)."""
    return {
        entry.name: Approver(entry.name, entry.public_key, tuple(entry.groups))
        for entry in spec.approvers
    }


def record_problem(
    record: Record,
    *,
    workspace: str,
    approvers: dict[str, Approver],
    now: datetime,
    spent: Spent = NO_SPENT,
) -> Reason | None:
    """Why this record cannot count for anything, or None when it is sound."""
    if not keys.verify(record.public_key, record.signed_payload(), record.signature):
        return Reason("forged", "the signature does not verify (forged or edited record)")
    approver = approvers.get(record.approver)
    if approver is None:
        return Reason(
            "not_approver", f'"{record.approver}" is not an approver in the applied Workspace'
        )
    if not keys.same_key(approver.public_key, record.public_key):
        return Reason(
            "wrong_key",
            f'the key is not the one the applied Workspace lists for "{record.approver}"',
        )
    if record.workspace != workspace:
        return Reason(
            "other_workspace", f'signed for workspace "{record.workspace}", not "{workspace}"'
        )
    try:
        expires = datetime.strptime(record.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return Reason("bad_expiry", "expires_at is not a valid time")
    # A denial blocks until the change changes or the record is removed (SPEC section 4); only
    # approvals lapse.
    if now >= expires and record.verdict == "approve":
        return Reason("expired", f"expired at {record.expires_at}")
    if record.verdict == "approve" and record.id in spent:
        return spent_reason(spent[record.id])
    return None


def spent_reason(seq: int) -> Reason:
    """Why a spent approval does not count."""
    return Reason(
        "spent",
        f"spent: an apply already used it (audit event {seq}); the change needs a new "
        "approval to be applied again",
    )


EARLIER_VERSION = Reason(
    "stale", "it approves an earlier version of this change; the change has changed since"
)


@dataclass(frozen=True)
class Authorship:
    """The change's author (an approver's name), or why it is not known; `others` are the
    approvers who signed earlier commits of the same change (since the applied state), who are
    its authors too."""

    name: str | None
    unknown: str | None = None
    others: tuple[str, ...] = ()
    nobody: str | None = None
    """Why no person made the change (a connector's server listed new tool definitions): no
    approver is excluded."""

    @classmethod
    def of(cls, name: str, others: tuple[str, ...] = ()) -> Authorship:
        return cls(name, None, tuple(sorted(set(others) - {name})))

    def includes(self, approver: str) -> bool:
        """Whether `approver` is one of the change's authors."""
        return approver == self.name or approver in self.others

    @classmethod
    def not_known(cls, reason: str) -> Authorship:
        return cls(None, f"author unknown: {reason}")

    @classmethod
    def no_one(cls, reason: str) -> Authorship:
        """A change no commit made: nobody wrote it, so nobody is excluded from approving it."""
        return cls(None, None, (), reason)

    def describe(self) -> str:
        if self.nobody is not None:
            return f"no one ({self.nobody})"
        if self.name is None:
            return self.unknown or "unknown"
        return ", ".join((self.name, *self.others))


NOT_NEEDED = Authorship(None, None)
"""For a change no rule of which excludes its author: nothing is looked up."""


@dataclass(frozen=True)
class Subject:
    """The gated change records are judged for: its request, its hash, the rules that gate it
    and who made it."""

    request_id: str
    change_hash: str
    rules: tuple[RuleRef, ...]
    author: Authorship


@dataclass(frozen=True)
class Panel:
    """Who judges: the applied Workspace's name and approvers, and the approvals applies have
    already used (spent)."""

    workspace: str
    approvers: dict[str, Approver]
    spent: Spent = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """One record as judged for one change."""

    path: str
    record: Record
    reason: Reason | None  # None: it counts

    @property
    def counts(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Evaluation:
    """The state of one change's approvals."""

    status: Status
    verdicts: tuple[Verdict, ...]
    missing: tuple[str, ...]  # e.g. "baseline/budget-raise: 1 more from admins"

    @property
    def approved_by(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                {
                    v.record.approver
                    for v in self.verdicts
                    if v.counts and v.record.verdict == "approve"
                }
            )
        )

    @property
    def denied_by(self) -> tuple[str, ...]:
        """The approvers whose valid denial blocks the change."""
        return tuple(
            sorted(
                v.record.approver for v in self.verdicts if v.counts and v.record.verdict == "deny"
            )
        )


def evaluate(
    subject: Subject, panel: Panel, records: list[tuple[str, Record]], *, now: datetime
) -> Evaluation:
    """Judge every record for this change against every approval rule."""
    request_id, change_hash, rules, author = (
        subject.request_id,
        subject.change_hash,
        subject.rules,
        subject.author,
    )
    workspace, approvers, spent = panel.workspace, panel.approvers, panel.spent
    verdicts = []
    for path, record in records:
        if record.request_id != request_id and record.change_hash != change_hash:
            continue
        reason = record_problem(
            record, workspace=workspace, approvers=approvers, now=now, spent=spent
        )
        if reason is None and record.change_hash != change_hash:
            reason = EARLIER_VERSION
        if reason is None and not any(
            _eligible(record, rule, author, approvers) is None for rule in rules
        ):
            reason = (
                _eligible(record, rules[0], author, approvers)
                if rules
                else Reason("no_rule", "no rule to satisfy")
            )
        verdicts.append(Verdict(path, record, reason))
    counted = [v for v in verdicts if v.counts]
    if any(v.record.verdict == "deny" for v in counted):
        return Evaluation("denied", tuple(verdicts), ())
    missing = []
    for rule in rules:
        need = rule.requirement.count if rule.requirement else 1
        # Counted per key, not per name: an applied Workspace that lists one key under two
        # names (validation refuses that now, an older applied state may not) is one person.
        have = {
            keys.material(approvers[v.record.approver].public_key)
            for v in counted
            if v.record.verdict == "approve"
            and _eligible(v.record, rule, author, approvers) is None
        }
        if rule.requirement and rule.requirement.exclude_author and author.unknown is not None:
            # Whose approval to refuse is not known, so no approval can meet this rule.
            missing.append(f"{rule.id}: {author.unknown}")
        elif len(have) < need:
            groups = " or ".join(rule.requirement.groups) if rule.requirement else "approvers"
            missing.append(f"{rule.id}: {need - len(have)} more from {groups}")
    if not missing:
        return Evaluation("approved", tuple(verdicts), ())
    expired = any(v.reason is not None and v.reason.kind == "expired" for v in verdicts)
    return Evaluation("expired" if expired else "pending", tuple(verdicts), tuple(missing))


def not_counted_for(
    record: Record, rules: tuple[RuleRef, ...], author: Authorship, approvers: dict[str, Approver]
) -> list[Reason]:
    """For a sound record: why it does not count for some of `rules` (empty when it counts
    for all of them)."""
    reasons = [_eligible(record, rule, author, approvers) for rule in rules]
    return [reason for reason in reasons if reason is not None]


def _eligible(
    record: Record, rule: RuleRef, author: Authorship, approvers: dict[str, Approver]
) -> Reason | None:
    """Why this (sound) record cannot count for `rule`, or None."""
    requirement = rule.requirement
    if requirement is None:
        return None
    approver = approvers[record.approver]
    if not set(approver.groups) & set(requirement.groups):
        return Reason(
            "ineligible",
            f'"{record.approver}" is not in {" or ".join(requirement.groups)}, '
            f"which {rule.id} requires",
        )
    if requirement.exclude_author and author.unknown is not None:
        return Reason("author_unknown", f"{rule.id} cannot be met: {author.unknown}")
    if requirement.exclude_author and author.includes(record.approver):
        return Reason(
            "own_change",
            f"{rule.id} does not let the change's author ({record.approver}) approve it",
        )
    return None
