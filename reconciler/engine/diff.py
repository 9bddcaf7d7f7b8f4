"""Field-level differences between two resource states (nested mappings; lists are leaves)."""

from __future__ import annotations

from typing import Any

from reconciler.plan.types import ABSENT, FieldDiff


def diff_states(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldDiff]:
    """Every changed leaf between `before` and `after`, in path order."""
    found: list[FieldDiff] = []
    _walk(
        before if before is not None else ABSENT, after if after is not None else ABSENT, "", found
    )
    return sorted(found, key=lambda change: change.path)


def _walk(before: Any, after: Any, path: str, found: list[FieldDiff]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() | after.keys():
            _walk(before.get(key, ABSENT), after.get(key, ABSENT), _join(path, key), found)
        return
    if isinstance(before, dict) and after is ABSENT:
        for key, value in before.items():
            _walk(value, ABSENT, _join(path, key), found)
        return
    if before is ABSENT and isinstance(after, dict):
        for key, value in after.items():
            _walk(ABSENT, value, _join(path, key), found)
        return
    if not _same(before, after):
        found.append(FieldDiff(path, before, after))


def _same(before: Any, after: Any) -> bool:
    # 1 and 1.0 are the same limit; True and 1 are not the same value.
    if type(before) is bool or type(after) is bool:
        return type(before) is type(after) and before == after
    return bool(before == after)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
