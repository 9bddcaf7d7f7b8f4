"""Policy packs as typed records, parsed from normalised PolicyPack data.

Flow: a PolicyPack document (validated and normalised by `reconciler.load`, or a built-in pack
from `packs/`) -> `parse_pack` -> `Pack` with its `PackRule`s -> `engine.ActivePolicy`. Parsing
is plain data to frozen records (no pydantic), so it costs the same whether the documents came
from the load cache, from YAML just validated, or from the applied state.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from reconciler.errors import ClonedError
from reconciler.patterncheck import pattern_problem
from reconciler.plan.types import DecisionKind, Requirement, RuleRef


@dataclass(frozen=True)
class ValueCondition:
    """`where` entry: some value at dotted `field` of the desired state matches `pattern`."""

    field: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Match:
    """When a rule applies. Every condition given must hold; an empty tuple or None means any."""

    kinds: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    risk: tuple[str, ...] = ()
    percent_over: float | None = None
    grows: bool | None = None
    tightens: bool | None = None
    """True: every selected entry provably narrows (`tighten.py`); False: some entry does not."""
    bootstrap: bool | None = None
    where: tuple[ValueCondition, ...] = ()
    field_pattern: re.Pattern[str] | None = None
    """`fields` compiled into one regex: each glob, or each glob followed by `.` and more."""
    data: Mapping[str, Any] | None = None
    """The normalised `match` mapping this was parsed from (what `policy show --json` prints)."""


@dataclass(frozen=True)
class PackRule:
    """One rule of one pack, ready to evaluate."""

    pack: str
    name: str
    description: str
    decision: DecisionKind
    match: Match
    requirement: Requirement | None = None

    @property
    def id(self) -> str:
        """`pack/rule`, the name approvals and plans use."""
        return f"{self.pack}/{self.name}"

    def ref(self) -> RuleRef:
        """This rule as a plan records it when the rule matched a change."""
        return RuleRef(
            pack=self.pack,
            rule=self.name,
            decision=self.decision,
            requirement=self.requirement,
            reason=self.description,
        )


@dataclass(frozen=True)
class Pack:
    """One policy pack: its rules and the runtime rules (egress, tools, redaction, rates)."""

    name: str
    builtin: bool
    description: str = ""
    extends: str | None = None
    rules: tuple[PackRule, ...] = ()
    egress_allow_hosts: tuple[str, ...] = ()
    egress_deny_hosts: tuple[str, ...] = ()
    tools_deny: tuple[str, ...] = ()
    tools_require_approval: tuple[str, ...] = ()
    redaction: tuple[tuple[str, str], ...] = ()
    """(name, regex) of each value to mask on every output."""
    calls_per_minute: int | None = None
    calls_per_hour: int | None = None


def parse_pack(name: str, data: Mapping[str, Any], *, builtin: bool) -> Pack:
    """A `Pack` called `name` from one normalised PolicyPack document (only `spec` is read)."""
    spec: Mapping[str, Any] = data.get("spec") or {}
    egress: Mapping[str, Any] = spec.get("egress") or {}
    tools: Mapping[str, Any] = spec.get("tools") or {}
    rates: Mapping[str, Any] = spec.get("rateLimits") or {}
    return Pack(
        name=name,
        builtin=builtin,
        description=str(spec.get("description") or ""),
        extends=spec.get("extends"),
        rules=tuple(_rule(name, rule) for rule in spec.get("rules") or ()),
        egress_allow_hosts=tuple(egress.get("allowHosts") or ()),
        egress_deny_hosts=tuple(egress.get("denyHosts") or ()),
        tools_deny=tuple(tools.get("deny") or ()),
        tools_require_approval=tuple(tools.get("requireApproval") or ()),
        redaction=tuple(
            (str(item["name"]), _checked_regex(name, str(item["name"]), str(item["regex"])))
            for item in spec.get("redaction") or ()
            if pattern_problem(str(item["regex"])) is None
        ),
        calls_per_minute=rates.get("callsPerMinute"),
        calls_per_hour=rates.get("callsPerHour"),
    )


def _rule(pack: str, data: Mapping[str, Any]) -> PackRule:
    name = str(data["name"])
    approvals: Mapping[str, Any] | None = data.get("approvals")
    decision = cast(DecisionKind, data["decision"])
    requirement = None
    if decision == "approval":
        if approvals is None:
            raise ClonedError(f"policy pack {pack}: rule {name} needs approvals: {{count, groups}}")
        requirement = Requirement(
            count=int(approvals.get("count", 1)),
            groups=tuple(approvals["groups"]),
            distinct=bool(approvals.get("distinct", False)),
            exclude_author=bool(approvals.get("excludeAuthor", False)),
        )
    return PackRule(
        pack=pack,
        name=name,
        description=str(data.get("description") or ""),
        decision=decision,
        match=_match(pack, name, data.get("match") or {}),
        requirement=requirement,
    )


def _match(pack: str, rule: str, data: Mapping[str, Any]) -> Match:
    fields = tuple(str(glob) for glob in data.get("fields") or ())
    increase: Mapping[str, Any] | None = data.get("increase")
    where = tuple(
        ValueCondition(
            field=str(item["field"]),
            pattern=re.compile(_checked_regex(pack, rule, str(item["matches"]))),
        )
        for item in data.get("where") or ()
    )
    return Match(
        kinds=tuple(str(kind) for kind in data.get("kinds") or ()),
        actions=tuple(data.get("actions") or ()),
        fields=fields,
        risk=tuple(data.get("risk") or ()),
        percent_over=float(increase["percentOver"]) if increase else None,
        grows=data.get("grows"),
        tightens=data.get("tightens"),
        bootstrap=data.get("bootstrap"),
        where=where,
        field_pattern=field_pattern(fields) if fields else None,
        data=data,
    )


def field_pattern(globs: tuple[str, ...]) -> re.Pattern[str]:
    """One regex that matches a dotted path when a glob matches it or one of its ancestors.

    fnmatch's `*` also matches dots, so "an ancestor matches GLOB" is "the path matches
    GLOB.*": `spec.egress` covers `spec.egress.allowHosts`.
    """
    parts = [fnmatch.translate(glob) for glob in globs]
    parts += [fnmatch.translate(glob + ".*") for glob in globs]
    return re.compile("|".join(f"(?:{part})" for part in parts))


def _checked_regex(pack: str, rule: str, regex: str) -> str:
    try:
        re.compile(regex)
    except re.error as exc:
        raise ClonedError(f"policy pack {pack}: {rule}: regex does not compile: {exc}") from None
    return regex
