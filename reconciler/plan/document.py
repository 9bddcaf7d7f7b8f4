"""The plan document: a plan's JSON form (`cloned plan --json`, a saved plan file) as frozen,
typed records, and the one parser that reads it.

A fresh plan's JSON is parsed into this document exactly as a saved plan file is, so the
renderers and every front end read one type, never a dict. `to_json()` gives the object back
key for key, in the order `cloned plan --json` prints it (specs/plan-format.md). Parsing checks
that every field is there with its type and that the format's words (actions, decisions, risks,
sources, statuses) are known; anything else raises `MalformedPlan`, naming the field
(`changes[2].diff: missing`). No I/O here: engine/planfile.py reads and writes plan files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, cast, get_args

from reconciler.canonical import digest
from reconciler.plan.types import (
    ABSENT,
    PLAN_FORMAT_VERSION,
    Action,
    Decision,
    DecisionKind,
    FieldDiff,
    Requirement,
    Risk,
    RuleRef,
)

ActualSource = Literal["state", "lock", "empty"]
PolicySource = Literal["applied", "desired (bootstrap)"]
ApprovalStatus = Literal["approved", "pending", "expired", "denied"]


NOT_IN_ID = frozenset({"plan_id", "created_at", "generated_by", "actual_source", "base", "head"})
"""Top-level fields the plan id leaves out: the id itself, when and by what the plan was made,
and where the actual state was read (with `--base` REF's lock, here the state database: the
same plan either way)."""
CHANGE_NOT_IN_ID = frozenset({"approvals", "in_branch"})
"""Fields of a change the plan id leaves out: the review context, which changes without the
plan changing (approving a change must not make its saved plan stale)."""


def plan_id_of(plan: Mapping[str, Any]) -> str:
    """The plan id of a plan's JSON form (what `cloned plan --json` prints, redacted): the
    digest of every field but those above. The planner computes a fresh plan's id with it and
    loading a saved plan checks the file's id with it, so an edited file is never the plan."""
    content = {key: value for key, value in plan.items() if key not in NOT_IN_ID}
    content["changes"] = [
        {key: value for key, value in change.items() if key not in CHANGE_NOT_IN_ID}
        for change in plan.get("changes", [])
    ]
    return digest(content)


class MalformedPlan(ValueError):
    """A plan's JSON lacks a field, has one it should not, or holds a wrong value there."""


@dataclass(frozen=True)
class Summary:
    """How many changes have each action and each decision."""

    create: int
    update: int
    delete: int
    replace: int
    auto: int
    approval: int
    deny: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Approvals:
    """What the approval records found so far say about one gated change."""

    request: str
    status: ApprovalStatus
    approved_by: tuple[str, ...]
    denied_by: tuple[str, ...]
    missing: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "status": self.status,
            "approved_by": list(self.approved_by),
            "denied_by": list(self.denied_by),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class PinChanges:
    """How a Connector change moves its tool pins (engine.planner.pin_changes)."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    flagged: Mapping[str, tuple[str, ...]]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
        }
        if self.flagged:
            out["flagged"] = {name: list(flags) for name, flags in self.flagged.items()}
        return out


@dataclass(frozen=True)
class PlannedChange:
    """One change of the document: what changes, policy's decision, its diff and approvals."""

    address: str
    kind: str
    name: str
    action: Action
    decision: Decision
    change_hash: str
    risk: Risk
    origin: str
    diff: tuple[FieldDiff, ...]
    approvals: Approvals | None = None  # only on changes whose decision is approval
    in_branch: bool | None = None  # only with --base
    widens: Mapping[str, tuple[str, ...]] | None = None  # only on Connector changes that widen
    pins: PinChanges | None = None  # only on Connector changes that move tool pins

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "decision": self.decision.kind,
            "rules": [rule.to_json() for rule in self.decision.rules],
            "reason": self.decision.reason,
            "change_hash": self.change_hash,
            "risk": self.risk,
            "origin": self.origin,
            "diff": [entry.to_json() for entry in self.diff],
        }
        if self.widens:
            out["widens"] = {what: list(names) for what, names in self.widens.items()}
        if self.pins is not None:
            out["pins"] = self.pins.to_json()
        if self.approvals is not None:
            out["approvals"] = self.approvals.to_json()
        if self.in_branch is not None:
            out["in_branch"] = self.in_branch
        return out


@dataclass(frozen=True)
class RevisionRef:
    """A revision as `--base` planned it: the ref given and the commit it resolved to."""

    ref: str
    commit: str

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref, "commit": self.commit}


@dataclass(frozen=True)
class PlanDocument:
    """A whole plan as its JSON form holds it (format_version 1)."""

    plan_id: str
    created_at: str
    generated_by: str
    desired_digest: str
    actual_digest: str
    actual_source: ActualSource
    policy_source: PolicySource
    bootstrap: bool
    targets: tuple[str, ...]
    summary: Summary
    changes: tuple[PlannedChange, ...]
    unmanaged: tuple[str, ...]
    desired_resources: Mapping[str, str]
    actual_resources: Mapping[str, str]
    base: RevisionRef | None = None  # with --base: whose cloned.lock gave the applied state
    head: RevisionRef | None = None  # with --base: whose .cloned/ gave the desired state

    @property
    def content_id(self) -> str:
        """The id the document's content gives (`plan_id_of`); `plan_id` when unedited."""
        return plan_id_of(self.to_json())

    @property
    def denied(self) -> bool:
        """Whether policy forbids any change (`cloned plan` then exits 4)."""
        return self.summary.deny > 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form, key for key and in order as `cloned plan --json` prints it."""
        out: dict[str, Any] = {
            "format_version": PLAN_FORMAT_VERSION,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "generated_by": self.generated_by,
            "desired_digest": self.desired_digest,
            "actual_digest": self.actual_digest,
            "actual_source": self.actual_source,
            "policy_source": self.policy_source,
            "bootstrap": self.bootstrap,
            "targets": list(self.targets),
            "summary": self.summary.to_json(),
            "changes": [change.to_json() for change in self.changes],
            "unmanaged": list(self.unmanaged),
            "desired_resources": dict(self.desired_resources),
            "actual_resources": dict(self.actual_resources),
        }
        if self.base is not None and self.head is not None:
            out["base"] = self.base.to_json()
            out["head"] = self.head.to_json()
        return out

    @classmethod
    def from_json(cls, data: object) -> PlanDocument:
        """Read a plan's JSON form; `MalformedPlan` names the first field that is wrong."""
        read = _Object(data, "")
        version = read.take("format_version")
        if type(version) is not int or version != PLAN_FORMAT_VERSION:
            raise MalformedPlan(f"format_version: must be {PLAN_FORMAT_VERSION}")
        base, head = read.optional("base"), read.optional("head")
        if (base is ABSENT) != (head is ABSENT):
            raise MalformedPlan("base and head: one without the other")
        document = cls(
            plan_id=read.string("plan_id"),
            created_at=read.string("created_at"),
            generated_by=read.string("generated_by"),
            desired_digest=read.string("desired_digest"),
            actual_digest=read.string("actual_digest"),
            actual_source=cast(ActualSource, read.word("actual_source", ActualSource)),
            policy_source=cast(PolicySource, read.word("policy_source", PolicySource)),
            bootstrap=read.boolean("bootstrap"),
            targets=read.strings("targets"),
            summary=_summary(_Object(read.take("summary"), "summary")),
            changes=tuple(
                _change(_Object(item, f"changes[{index}]"))
                for index, item in enumerate(read.array("changes"))
            ),
            unmanaged=read.strings("unmanaged"),
            desired_resources=read.digests("desired_resources"),
            actual_resources=read.digests("actual_resources"),
            base=None if base is ABSENT else _revision(_Object(base, "base")),
            head=None if head is ABSENT else _revision(_Object(head, "head")),
        )
        read.done()
        return document


def _summary(read: _Object) -> Summary:
    counts = {field.name: read.count(field.name) for field in fields(Summary)}
    read.done()
    return Summary(**counts)


def _change(read: _Object) -> PlannedChange:
    decision = cast(DecisionKind, read.word("decision", DecisionKind))
    rules = tuple(
        _rule(_Object(item, f"{read.at('rules')}[{index}]"))
        for index, item in enumerate(read.array("rules"))
    )
    approvals = read.optional("approvals")
    in_branch = read.optional("in_branch")
    widens = _widens(read.optional("widens"), read.at("widens"))
    pins = _pins(read.optional("pins"), read.at("pins"))
    if in_branch is not ABSENT and type(in_branch) is not bool:
        raise MalformedPlan(f"{read.at('in_branch')}: not true or false")
    change = PlannedChange(
        address=read.string("address"),
        kind=read.string("kind"),
        name=read.string("name"),
        action=cast(Action, read.word("action", Action)),
        decision=Decision(decision, rules, read.string("reason")),
        change_hash=read.string("change_hash"),
        risk=cast(Risk, read.word("risk", Risk)),
        origin=read.string("origin"),
        diff=tuple(
            _diff_entry(_Object(item, f"{read.at('diff')}[{index}]"))
            for index, item in enumerate(read.array("diff"))
        ),
        approvals=None
        if approvals is ABSENT
        else _approvals(_Object(approvals, read.at("approvals"))),
        in_branch=None if in_branch is ABSENT else bool(in_branch),
        widens=widens,
        pins=pins,
    )
    read.done()
    return change


def _pins(value: Any, at: str) -> PinChanges | None:
    """A change's `pins`: the tools added, changed and removed, and what is flagged."""
    if value is ABSENT:
        return None
    known = ("added", "changed", "removed", "flagged")
    if not isinstance(value, dict) or not set(value) <= set(known):
        raise MalformedPlan(f"{at}: not an object of {', '.join(known)}")
    lists = {}
    for what in ("added", "changed", "removed"):
        names = value.get(what, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise MalformedPlan(f"{at}.{what}: not a list of names")
        lists[what] = tuple(names)
    flagged = value.get("flagged", {})
    if not isinstance(flagged, dict) or not all(
        isinstance(flags, list) and all(isinstance(f, str) for f in flags)
        for flags in flagged.values()
    ):
        raise MalformedPlan(f"{at}.flagged: not an object of lists of flags")
    return PinChanges(
        lists["added"],
        lists["changed"],
        lists["removed"],
        {str(name): tuple(flags) for name, flags in flagged.items()},
    )


def _widens(value: Any, at: str) -> Mapping[str, tuple[str, ...]] | None:
    """A change's `widens`: tools, egress_hosts and secrets, each a list of names."""
    if value is ABSENT:
        return None
    known = ("tools", "egress_hosts", "secrets")
    if not isinstance(value, dict) or not set(value) <= set(known):
        raise MalformedPlan(f"{at}: not an object of {', '.join(known)}")
    found = {}
    for what, names in value.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise MalformedPlan(f"{at}.{what}: not a list of names")
        found[what] = tuple(names)
    return found


def _rule(read: _Object) -> RuleRef:
    rule_id = read.string("rule")
    pack, slash, rule = rule_id.partition("/")
    if not slash:
        raise MalformedPlan(f"{read.at('rule')}: not pack/rule")
    needs = read.optional("approvals")
    reason = read.optional("reason")
    if reason is not ABSENT and not isinstance(reason, str):
        raise MalformedPlan(f"{read.at('reason')}: not a string")
    ref = RuleRef(
        pack,
        rule,
        cast(DecisionKind, read.word("decision", DecisionKind)),
        None if needs is ABSENT else _requirement(_Object(needs, read.at("approvals"))),
        "" if reason is ABSENT else reason,
    )
    read.done()
    return ref


def _requirement(read: _Object) -> Requirement:
    requirement = Requirement(
        count=read.count("count"),
        groups=read.strings("groups"),
        distinct=read.boolean("distinct"),
        exclude_author=read.boolean("exclude_author"),
    )
    read.done()
    return requirement


def _diff_entry(read: _Object) -> FieldDiff:
    entry = FieldDiff(read.string("path"), read.optional("before"), read.optional("after"))
    if entry.before is ABSENT and entry.after is ABSENT:
        raise MalformedPlan(f"{read.where}: neither before nor after")
    read.done()
    return entry


def _approvals(read: _Object) -> Approvals:
    approvals = Approvals(
        request=read.string("request"),
        status=cast(ApprovalStatus, read.word("status", ApprovalStatus)),
        approved_by=read.strings("approved_by"),
        denied_by=read.strings("denied_by"),
        missing=read.strings("missing"),
    )
    read.done()
    return approvals


def _revision(read: _Object) -> RevisionRef:
    revision = RevisionRef(read.string("ref"), read.string("commit"))
    read.done()
    return revision


class _Object:
    """One JSON object being read: each field is taken once, with its type checked; a field
    nobody took is one the format does not have."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise MalformedPlan(f"{where or 'the plan'}: not an object")
        self.data: dict[str, Any] = data
        self.where = where
        self.taken: set[str] = set()

    def at(self, key: str) -> str:
        """The field's place in the plan, as messages name it: `changes[0].diff`."""
        return f"{self.where}.{key}" if self.where else key

    def optional(self, key: str) -> Any:
        """The field's value, or ABSENT."""
        self.taken.add(key)
        return self.data.get(key, ABSENT)

    def take(self, key: str) -> Any:
        value = self.optional(key)
        if value is ABSENT:
            raise MalformedPlan(f"{self.at(key)}: missing")
        return value

    def string(self, key: str) -> str:
        value = self.take(key)
        if not isinstance(value, str):
            raise MalformedPlan(f"{self.at(key)}: not a string")
        return value

    def boolean(self, key: str) -> bool:
        value = self.take(key)
        if type(value) is not bool:
            raise MalformedPlan(f"{self.at(key)}: not true or false")
        return value

    def count(self, key: str) -> int:
        value = self.take(key)
        if type(value) is not int or value < 0:
            raise MalformedPlan(f"{self.at(key)}: not a count")
        return value

    def word(self, key: str, words: Any) -> str:
        """One of the words of a Literal type."""
        value = self.take(key)
        choices: tuple[str, ...] = get_args(words)
        if not isinstance(value, str) or value not in choices:
            raise MalformedPlan(f"{self.at(key)}: not one of {', '.join(choices)}")
        return value

    def array(self, key: str) -> list[Any]:
        value = self.take(key)
        if not isinstance(value, list):
            raise MalformedPlan(f"{self.at(key)}: not a list")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.array(key)
        if not all(isinstance(item, str) for item in value):
            raise MalformedPlan(f"{self.at(key)}: not a list of strings")
        return tuple(value)

    def digests(self, key: str) -> dict[str, str]:
        value = self.take(key)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise MalformedPlan(f"{self.at(key)}: not a mapping of addresses to digests")
        return value

    def done(self) -> None:
        """Refuse a field the format does not have."""
        unknown = sorted(set(self.data) - self.taken)
        if unknown:
            raise MalformedPlan(f"{self.at(unknown[0])}: not a field of the plan format")
