"""Does a rule's `match` hold for a proposed change? Pure functions, no I/O.

Flow: planning computes a `ProposedChange` (with a leaf-level diff) -> `engine.decide` asks
`matches(rule.match, change)` for every active rule -> the decision goes into the plan.

Diff paths are dotted key paths (`spec.limits.cost_usd`); lists are leaves (one `FieldDiff` per
changed list). On a create every field of the desired document is a `FieldDiff` from `ABSENT`;
on a delete every field goes to `ABSENT`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from reconciler.plan.types import ABSENT, FieldDiff, ProposedChange
from reconciler.policy.rules import Match, ValueCondition
from reconciler.policy.tighten import tightens


def matches(match: Match, change: ProposedChange) -> bool:
    """True when every condition `match` gives holds for `change`."""
    if match.kinds and change.kind.lower() not in {kind.lower() for kind in match.kinds}:
        return False
    if match.actions and change.action not in match.actions:
        return False
    if match.bootstrap is not None and change.bootstrap != match.bootstrap:
        return False
    if match.risk and change.risk not in match.risk:
        return False
    if not all(_where_holds(condition, change.after) for condition in match.where):
        return False
    if (
        match.fields
        or match.grows is not None
        or match.percent_over is not None
        or match.tightens is not None
    ):
        return _diff_holds(match, change)
    return True


def _diff_holds(match: Match, change: ProposedChange) -> bool:
    selected = matched_fields(match, change.diff)
    if match.fields and not selected:
        return False
    if match.grows is not None and any(grew(item) for item in selected) != match.grows:
        return False
    if match.tightens is not None and _all_tighten(change.kind, selected) != match.tightens:
        return False
    return match.percent_over is None or any(
        rose_over(item, match.percent_over) for item in selected
    )


def _all_tighten(kind: str, selected: tuple[FieldDiff, ...]) -> bool:
    """Every selected entry provably narrows what the resource allows (and there is one)."""
    return bool(selected) and all(tightens(kind, item) for item in selected)


def matched_fields(match: Match, diff: tuple[FieldDiff, ...]) -> tuple[FieldDiff, ...]:
    """The diff entries `match.fields` selects (every entry when `fields` is empty)."""
    if match.field_pattern is None:
        return diff
    pattern = match.field_pattern
    return tuple(item for item in diff if pattern.match(item.path))


def grew(item: FieldDiff) -> bool:
    """Whether one changed field widened what is allowed.

    A number grew when it increased or was removed (a removed limit is unlimited); a list when
    it gained an element it did not have; a mapping when it gained a key; a list, string or
    mapping when it appeared non-empty where there was none. Adding a number where there was
    none (a new limit) narrows, so it does not count.
    """
    before, after = item.before, item.after
    if _is_number(before):
        return after is ABSENT or after is None or (_is_number(after) and after > before)
    if after is ABSENT or after is None:
        return False
    if before is ABSENT or before is None:
        return isinstance(after, list | str | dict) and len(after) > 0
    if isinstance(after, list):
        return not isinstance(before, list) or any(element not in before for element in after)
    if isinstance(after, dict):
        return not isinstance(before, dict) or any(key not in before for key in after)
    return False


def rose_over(item: FieldDiff, percent: float) -> bool:
    """Whether a numeric field rose by strictly more than `percent` percent.

    From 0 any positive value counts, and removing the number counts (unlimited). Arithmetic
    is decimal on the values as written, so 50 -> 60 is exactly 20%, never 20.000000001%.
    """
    before, after = item.before, item.after
    if not _is_number(before):
        return False
    if after is ABSENT or after is None:
        return True
    if not _is_number(after):
        return False
    old, new = Decimal(str(before)), Decimal(str(after))
    if old <= 0:
        return new > old
    return (new - old) * 100 > Decimal(str(percent)) * old


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _where_holds(condition: ValueCondition, after: dict[str, Any] | None) -> bool:
    """Some value at `condition.field` of the desired document matches the regex."""
    if after is None:
        return False
    return any(
        condition.pattern.search(_as_text(value)) is not None
        for value in values_at(after, condition.field.split("."))
        if not isinstance(value, dict)
    )


def values_at(node: Any, keys: list[str]) -> Iterator[Any]:
    """Every value at the dotted path `keys`; lists on the way (and at the end) fan out."""
    if isinstance(node, list):
        for element in node:
            yield from values_at(element, keys)
        return
    if not keys:
        yield node
        return
    if isinstance(node, dict) and keys[0] in node:
        yield from values_at(node[keys[0]], keys[1:])


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
