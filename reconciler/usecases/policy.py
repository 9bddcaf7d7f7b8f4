"""`policy show`: the active policy packs and every rule they hold, described.

The active policy is the applied one (state database, or `cloned.lock` in a fresh clone), which
decides every plan; before the first apply it is the one `.cloned/` declares. `desired=True`
shows what `.cloned/` proposes instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode, Problem, ValidationFailed, error_json
from reconciler.policy.rules import Pack, PackRule

__all__ = ["Pack", "PackRule", "PolicyShown", "ShownPack", "ShownRule", "show"]


@dataclass(frozen=True)
class ShownRule:
    """One rule with its decision and match described for people."""

    rule: PackRule
    decision: str  # `approval: 1 from admins`, `deny`, `auto`
    when: str  # `Budget update; fields spec.limits.*; that grows`

    def to_json(self) -> dict[str, Any]:
        from reconciler.policy.describe import rule_json

        return rule_json(self.rule)


@dataclass(frozen=True)
class ShownPack:
    """One active pack (its runtime rules on `pack`) and its rules, described."""

    pack: Pack
    rules: tuple[ShownRule, ...]


@dataclass(frozen=True)
class PolicyShown:
    """The policy packs in force, in order, and where they were read from.

    An invalid desired state is a result, not an error: `error` says what failed and
    `problems` lists every finding."""

    root: Path
    source: str = ""  # for people: `the applied state (state database)`
    packs: tuple[ShownPack, ...] = ()
    inactive: tuple[str, ...] = ()  # declared PolicyPacks the Workspace does not list
    error: str | None = None
    hint: str | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def pack_names(self) -> tuple[str, ...]:
        return tuple(shown.pack.name for shown in self.packs)

    @property
    def rules(self) -> tuple[ShownRule, ...]:
        """Every rule of every pack, in pack order."""
        return tuple(rule for shown in self.packs for rule in shown.rules)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.error is None else ExitCode.ERROR

    def to_json(self) -> list[dict[str, Any]] | dict[str, Any]:
        """A list of rule objects; when the desired state is invalid, the error object every
        failing `--json` command prints (specs/exit-codes.md)."""
        if self.error is not None:
            return error_json(self.error, int(self.exit_code), self.problems)
        return [rule.to_json() for rule in self.rules]


def show(*, path: Path, desired: bool = False) -> PolicyShown:
    """The policy that decides the plans of the workspace containing `path` (with `desired`,
    the one `.cloned/` proposes); nothing is written but the content cache."""
    from reconciler.engine.session import open_session
    from reconciler.load.files import find_root
    from reconciler.policy.source import from_desired_state, inactive_packs
    from reconciler.state.db import StateDB

    root = find_root(path)
    with StateDB.existing(root) as db:
        try:
            session = open_session(root, db)
        except ValidationFailed as exc:
            return PolicyShown(root, error=exc.message, hint=exc.hint, problems=tuple(exc.problems))
    policy = from_desired_state(session.desired) if desired else session.policy
    packs = tuple(_described(pack) for pack in policy.packs)
    return PolicyShown(root, policy.source, packs, inactive=inactive_packs(session.desired, policy))


def _described(pack: Pack) -> ShownPack:
    """The pack with each rule's decision and match put in words."""
    from reconciler.policy.describe import describe_decision, describe_match

    rules = (
        ShownRule(rule, describe_decision(rule), describe_match(rule.match)) for rule in pack.rules
    )
    return ShownPack(pack, tuple(rules))
