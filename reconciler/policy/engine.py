"""The active policy of a workspace, and the decision it makes for each proposed change.

Flow: the planner builds an `ActivePolicy` once per plan with `build_policy` (from the
Workspace spec and the PolicyPack documents of whichever state governs: today the desired
state, see `source.py`), then calls `decide(policy, change)` for every `ProposedChange`.

Rules combine by conjunction: every matching rule counts. Any matching deny rule forbids the
change; otherwise every matching approval rule must be satisfied; otherwise the change applies
automatically. So an overlay pack can add requirements but never remove one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from reconciler.egress.rules import PackEgress
from reconciler.errors import ClonedError
from reconciler.model.builtins import BUILTIN_POLICY_PACKS
from reconciler.plan.types import Decision, ProposedChange
from reconciler.policy.builtin import builtin_pack
from reconciler.policy.match import matches
from reconciler.policy.rules import Pack, PackRule, parse_pack

DEFAULT_PACKS = ("baseline",)
"""What applies when no pack is named (the Workspace model's default for `policyPacks`)."""


@dataclass(frozen=True)
class EgressPolicy:
    """Egress rules of every active pack, merged so that adding a pack can only narrow them.

    A host must appear in each of `allow_lists` (one per pack that lists hosts; a pack with no
    list does not restrict), and in none of `deny_hosts` (every pack's, together). Whether a
    concrete host matches an entry (`*.example.com`, `:port`) is the runtime's to decide.
    """

    allow_lists: tuple[tuple[str, ...], ...] = ()
    deny_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActivePolicy:
    """The packs in force, in order (each once), and where they were read from."""

    packs: tuple[Pack, ...]
    source: str = ""
    """Where the policy came from, for people: `.cloned/ (desired state)`."""

    @cached_property
    def rules(self) -> tuple[PackRule, ...]:
        """Every rule of every active pack, in pack order."""
        return tuple(rule for pack in self.packs for rule in pack.rules)

    @property
    def pack_names(self) -> tuple[str, ...]:
        """The active packs' names, in order."""
        return tuple(pack.name for pack in self.packs)

    @cached_property
    def redaction_patterns(self) -> tuple[str, ...]:
        """Every active pack's redaction regexes (for `reconciler.redact.Redactor`)."""
        return _unique(regex for pack in self.packs for _, regex in pack.redaction)

    @cached_property
    def tools_deny(self) -> tuple[str, ...]:
        """Tool name patterns no connector may expose: every pack's, together."""
        return _unique(tool for pack in self.packs for tool in pack.tools_deny)

    @cached_property
    def tools_require_approval(self) -> tuple[str, ...]:
        """Tool name patterns whose calls need an approval: every pack's, together."""
        return _unique(tool for pack in self.packs for tool in pack.tools_require_approval)

    @cached_property
    def egress(self) -> EgressPolicy:
        """The merged egress rules (see `EgressPolicy`)."""
        return EgressPolicy(
            allow_lists=tuple(p.egress_allow_hosts for p in self.packs if p.egress_allow_hosts),
            deny_hosts=_unique(host for pack in self.packs for host in pack.egress_deny_hosts),
        )

    @cached_property
    def pack_egress(self) -> tuple[PackEgress, ...]:
        """Every active pack's egress lists, as the egress rules read them."""
        return tuple(
            PackEgress(pack.name, pack.egress_allow_hosts, pack.egress_deny_hosts)
            for pack in self.packs
        )

    @cached_property
    def registry_denies(self) -> tuple[PackEgress, ...]:
        """What registry downloads obey of the packs: their `denyHosts` only (a Registry
        resource is the reviewed consent to its own host, so a pack's `allowHosts`, which
        narrows what connectors reach, does not apply to it; specs/egress.md)."""
        return tuple(PackEgress(p.name, (), p.deny_hosts) for p in self.pack_egress if p.deny_hosts)

    @cached_property
    def calls_per_minute(self) -> int | None:
        """The tightest `rateLimits.callsPerMinute` of any pack, or None when none sets one."""
        return _tightest(pack.calls_per_minute for pack in self.packs)

    @cached_property
    def calls_per_hour(self) -> int | None:
        """The tightest `rateLimits.callsPerHour` of any pack, or None when none sets one."""
        return _tightest(pack.calls_per_hour for pack in self.packs)


def build_policy(
    pack_names: Sequence[str],
    packs: Mapping[str, Mapping[str, Any]],
    *,
    source: str = "",
) -> ActivePolicy:
    """The policy a Workspace selects with its `spec.policyPacks` (`pack_names`).

    `packs` maps each declared PolicyPack's name to its normalised document (only its `spec`
    is read, so applied-state records do). Each of `pack_names` is a built-in pack or one of
    `packs`; a pack that `extends` a built-in brings it in first. Each pack is included once,
    in order. Unknown names fail closed with a `ClonedError`.
    """
    for name in packs:
        if name in BUILTIN_POLICY_PACKS:
            raise ClonedError(
                f'PolicyPack "{name}" has the name of a built-in pack; rename it '
                f"(to overlay the built-in, set extends: {name})"
            )
    chosen: dict[str, Pack] = {}
    for name in pack_names or DEFAULT_PACKS:
        pack = _pack(str(name), packs)
        if pack.extends is not None and pack.extends not in chosen:
            chosen[pack.extends] = builtin_pack(pack.extends)
        chosen.setdefault(pack.name, pack)
    return ActivePolicy(packs=tuple(chosen.values()), source=source)


def _pack(name: str, declared: Mapping[str, Mapping[str, Any]]) -> Pack:
    if name in BUILTIN_POLICY_PACKS:
        return builtin_pack(name)
    data = declared.get(name)
    if data is None:
        known = ", ".join([*BUILTIN_POLICY_PACKS, *sorted(declared)])
        raise ClonedError(
            f'Workspace policyPacks names "{name}", which is neither a built-in pack nor a '
            f"declared PolicyPack (known: {known})"
        )
    pack = parse_pack(name, data, builtin=False)
    if pack.extends is not None and pack.extends not in BUILTIN_POLICY_PACKS:
        raise ClonedError(
            f'PolicyPack "{name}" extends "{pack.extends}", which is not a built-in pack '
            f"({', '.join(BUILTIN_POLICY_PACKS)})"
        )
    return pack


def decide(policy: ActivePolicy, change: ProposedChange) -> Decision:
    """What `policy` decides for `change`: deny, approval (every matching rule) or auto."""
    matched = [rule for rule in policy.rules if matches(rule.match, change)]
    denied = [rule for rule in matched if rule.decision == "deny"]
    if denied:
        return Decision(
            "deny", tuple(rule.ref() for rule in denied), reason=f"forbidden by {_ids(denied)}"
        )
    gated = [rule for rule in matched if rule.decision == "approval"]
    if gated:
        return Decision(
            "approval", tuple(rule.ref() for rule in gated), reason=f"required by {_ids(gated)}"
        )
    allowed = tuple(rule.ref() for rule in matched if rule.decision == "auto")
    return Decision("auto", allowed, reason="no rule requires approval")


def _ids(rules: list[PackRule]) -> str:
    return ", ".join(rule.id for rule in rules)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _tightest(values: Iterable[int | None]) -> int | None:
    given = [value for value in values if value is not None]
    return min(given) if given else None
