"""Rules described for people and for scripts: what `cloned policy show` prints.

Flow: `ActivePolicy` -> `describe_match` (one compact line per rule) and `rule_json` (one
object per rule for `--json`), attached to each rule by `reconciler.usecases.policy.show`; the
CLI only arranges them.
"""

from __future__ import annotations

from typing import Any

from reconciler.policy.rules import Match, PackRule


def describe_match(match: Match) -> str:
    """`Budget update; fields spec.limits.*; that grows`, `any delete`, `any change`."""
    kinds, actions = _either(match.kinds), _either(match.actions)
    if kinds and actions:
        parts = [f"{kinds} {actions}"]
    else:
        parts = [f"any {kinds or actions or 'change'}{' change' if kinds else ''}"]
    if match.fields:
        parts.append(f"field{'s' if len(match.fields) > 1 else ''} {', '.join(match.fields)}")
    if match.grows is not None:
        parts.append("that grows" if match.grows else "that does not grow")
    if match.tightens is not None:
        parts.append("that tightens" if match.tightens else "unless it tightens")
    if match.percent_over is not None:
        parts.append(f"raised by more than {match.percent_over:g}%")
    if match.risk:
        parts.append(f"risk {_either(match.risk)}")
    parts.extend(
        f"{condition.field} matches {condition.pattern.pattern}" for condition in match.where
    )
    if match.bootstrap is not None:
        parts.append("at bootstrap only" if match.bootstrap else "not at bootstrap")
    return "; ".join(parts)


def describe_decision(rule: PackRule) -> str:
    """`approval: 1 from admins`, `deny` or `auto`."""
    if rule.requirement is not None:
        return f"{rule.decision}: {rule.requirement.describe()}"
    return rule.decision


def rule_json(rule: PackRule) -> dict[str, Any]:
    """One rule as `cloned policy show --json` prints it."""
    return {
        "rule": rule.id,
        "pack": rule.pack,
        "name": rule.name,
        "decision": rule.decision,
        "approvals": rule.requirement.to_json() if rule.requirement is not None else None,
        "match": dict(rule.match.data or {}),
        "when": describe_match(rule.match),
        "description": rule.description,
    }


def _either(items: tuple[str, ...]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"
