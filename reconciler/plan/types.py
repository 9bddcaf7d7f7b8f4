"""The plan's data types: frozen records that planning produces and apply consumes unchanged.

Nothing here imports pydantic or does I/O; `to_json` gives the stable, versioned JSON form that
`cloned plan --json` prints and `--out` saves (schemas/plan.schema.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from reconciler.canonical import digest

# The plan's words are defined once, in model.names; re-exported for the plan's readers.
from reconciler.model.names import Action as Action
from reconciler.model.names import DecisionKind as DecisionKind
from reconciler.model.names import Risk as Risk

PLAN_FORMAT_VERSION = 1


class _Absent:
    """A field that does not exist on one side of a diff (distinct from null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class FieldDiff:
    """One changed leaf: `path` like `spec.limits.cost_usd`, values `ABSENT` when missing."""

    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.before is not ABSENT:
            out["before"] = self.before
        if self.after is not ABSENT:
            out["after"] = self.after
        return out


@dataclass(frozen=True)
class Requirement:
    """What approval a rule asks for."""

    count: int
    groups: tuple[str, ...]
    distinct: bool = False
    exclude_author: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "groups": list(self.groups),
            "distinct": self.distinct,
            "exclude_author": self.exclude_author,
        }

    def describe(self) -> str:
        """`2 from admins (distinct people, not the author)`"""
        extras = []
        if self.distinct:
            extras.append("distinct people")
        if self.exclude_author:
            extras.append("not the author")
        tail = f" ({', '.join(extras)})" if extras else ""
        return f"{self.count} from {' or '.join(self.groups)}{tail}"


@dataclass(frozen=True)
class RuleRef:
    """A policy rule that matched a change: `pack/rule`, its decision and requirement."""

    pack: str
    rule: str
    decision: DecisionKind
    requirement: Requirement | None = None
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.pack}/{self.rule}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.id, "decision": self.decision}
        if self.requirement is not None:
            out["approvals"] = self.requirement.to_json()
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleRef:
        """Read back what `to_json` wrote (approval requests store their rules this way)."""
        pack, _, rule = str(data["rule"]).partition("/")
        approvals = data.get("approvals")
        requirement = None
        if approvals is not None:
            requirement = Requirement(
                count=int(approvals["count"]),
                groups=tuple(approvals["groups"]),
                distinct=bool(approvals.get("distinct", False)),
                exclude_author=bool(approvals.get("exclude_author", False)),
            )
        return cls(pack, rule, data["decision"], requirement, str(data.get("reason", "")))


@dataclass(frozen=True)
class Decision:
    """What policy decided for one change, and which rules decided it."""

    kind: DecisionKind
    rules: tuple[RuleRef, ...] = ()
    reason: str = ""

    @property
    def requirements(self) -> tuple[RuleRef, ...]:
        """The approval rules that must each be satisfied (empty unless kind is approval)."""
        return tuple(rule for rule in self.rules if rule.decision == "approval")


@dataclass(frozen=True)
class ProposedChange:
    """A change before policy has looked at it: what planning computes first."""

    address: str
    kind: str
    name: str
    action: Action
    before: dict[str, Any] | None  # applied state (metadata + spec), None on create
    after: dict[str, Any] | None  # desired state (metadata + spec), None on delete
    diff: tuple[FieldDiff, ...]
    risk: Risk
    origin: str  # "file:line" of the desired document, or "state" for a delete
    bootstrap: bool  # the actual state was empty when this plan was made

    @cached_property
    def change_hash(self) -> str:
        """What an approval signs: this exact change, against this exact applied state."""
        return digest(
            {
                "address": self.address,
                "action": self.action,
                "before": self.before,
                "after": self.after,
            }
        )


@dataclass(frozen=True)
class Change:
    """A planned change with policy's decision: the unit apply executes and approvals bind to."""

    proposed: ProposedChange
    decision: Decision

    @property
    def change_hash(self) -> str:
        """What an approval signs (see `ProposedChange.change_hash`)."""
        return self.proposed.change_hash

    @property
    def address(self) -> str:
        return self.proposed.address

    @property
    def action(self) -> Action:
        return self.proposed.action

    @property
    def after_digest(self) -> str:
        """Digest of the desired state this change applies (what the lock file records)."""
        return digest(self.proposed.after)
