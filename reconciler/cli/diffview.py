"""A plan's diff entries as lines a reviewer can trust: lists and mappings element by element.

The plan's `diff` holds changed leaves, and a changed list is one leaf holding both whole lists
(specs/plan-format.md). Shown as two JSON texts cut to a line, adding an approver, swapping a key
or editing a later rule of a long list looks the same before and after. So a list or mapping
that changed is shown by what changed inside it:

    + spec.approvers[name=bob]: {"groups": ["admins"], "name": "bob", "publicKey": "ssh-..."}
    ~ spec.approvers[name=alice].publicKey: "ssh-ed25519 AAAA…" -> "ssh-ed25519 BBBB…"
    ~ spec.rules[3].require.count: 1 -> 2
    - spec.policyPacks[1]: "strict"
    ~ spec.approvers: order "alice", "bob" -> "bob", "alice"

Elements of a list are matched by their `name` (or `id`) when every element on both sides is a
mapping with a distinct one (`[name=bob]`), else by position, aligning inserted and removed
elements (`[2]`, the index on the side that has it). A value is printed whole when it is short,
else by its parts, so no element or field is ever cut; a long string that changed keeps its
differing part and says how many characters around it were left out. The lines are plain: the
caller makes them inert (reconciler.cli.inert).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher
from typing import Any

from reconciler.plan.types import ABSENT, FieldDiff

WHOLE = 100  # a list or mapping whose JSON is at most this long is printed on one line
CONTEXT = 24  # characters kept on each side of the differing part of a long changed string
LONG = 120  # a changed value longer than this is shortened around its differing part
KEYS = ("name", "id")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def field_lines(diff: Iterable[FieldDiff], *, action: str) -> list[str]:
    """`+ path: value`, `~ path: before -> after`, `- path: value` for each changed field.

    On a create, empty values (defaults such as `[]` or `""`) are left out: they say nothing.
    """
    lines: list[str] = []
    creating = action == "create"
    for field in diff:
        if creating and field.after in ("", [], {}):
            continue
        _field(field.path, field.before, field.after, lines)
    return lines


def diff_lines(change: Mapping[str, Any]) -> list[str]:
    """The same for a change in its JSON form (an approval request stores its change so)."""
    entries = (
        FieldDiff(entry["path"], entry.get("before", ABSENT), entry.get("after", ABSENT))
        for entry in change["diff"]
    )
    return field_lines(entries, action=change.get("action", ""))


def dumps(item: Any) -> str:
    """A JSON value on one line, as diffs show it."""
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


def _field(path: str, before: Any, after: Any, out: list[str]) -> None:
    if before is ABSENT:
        _one("+", path, after, out)
    elif after is ABSENT:
        _one("-", path, before, out)
    elif isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            old, new = before.get(key, ABSENT), after.get(key, ABSENT)
            if old is ABSENT or new is ABSENT or not _same(old, new):
                _field(_key(path, key), old, new, out)
    elif isinstance(before, list) and isinstance(after, list):
        _list(path, before, after, out)
    elif not _same(before, after):
        old, new = _pair(dumps(before), dumps(after))
        out.append(f"~ {path}: {old} -> {new}")


def _one(sign: str, path: str, item: Any, out: list[str], named: str | None = None) -> None:
    """An added or removed value: whole when short, else by its elements or fields (leaving out
    the `named` field that the path already shows: `[name=bob]`)."""
    text = dumps(item)
    if len(text) <= WHOLE or not item or not isinstance(item, dict | list):
        out.append(f"{sign} {path}: {text}")
        return
    if isinstance(item, dict):
        for key in sorted(item):
            if key != named:
                _one(sign, _key(path, key), item[key], out)
        return
    key = _list_key(item, item)
    for index, element in enumerate(item):
        _one(sign, _index(path, index, element, key), element, out, key)


def _list(path: str, before: list[Any], after: list[Any], out: list[str]) -> None:
    key = _list_key(before, after)
    if key is not None:
        _keyed(path, key, before, after, out)
        return
    matcher = SequenceMatcher(
        None, [dumps(x) for x in before], [dumps(x) for x in after], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(paired):
            _field(f"{path}[{j1 + k}]", before[i1 + k], after[j1 + k], out)
        for i in range(i1 + paired, i2):
            _one("-", f"{path}[{i}]", before[i], out)
        for j in range(j1 + paired, j2):
            _one("+", f"{path}[{j}]", after[j], out)


def _keyed(path: str, key: str, before: list[Any], after: list[Any], out: list[str]) -> None:
    old = {element[key]: element for element in before}
    new = {element[key]: element for element in after}
    for name, element in old.items():
        if name not in new:
            _one("-", _index(path, 0, element, key), element, out, key)
    for name, element in new.items():
        if name not in old:
            _one("+", _index(path, 0, element, key), element, out, key)
        elif not _same(old[name], element):
            _field(_index(path, 0, element, key), old[name], element, out)
    kept_before = [name for name in old if name in new]
    kept_after = [name for name in new if name in old]
    if kept_before != kept_after:
        shown = [", ".join(dumps(n) for n in names) for names in (kept_before, kept_after)]
        out.append(f"~ {path}: order {shown[0]} -> {shown[1]}")


def _list_key(before: list[Any], after: list[Any]) -> str | None:
    """`name` or `id` when every element on both sides is a mapping with a distinct one."""
    for key in KEYS:
        for side in (before, after):
            names = [e.get(key) if isinstance(e, dict) else None for e in side]
            if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
                break
        else:
            return key
    return None


def _index(path: str, index: int, element: Any, key: str | None) -> str:
    if key is None:
        return f"{path}[{index}]"
    name = element[key]
    shown = name if _PLAIN_KEY.match(name) else dumps(name)
    return f"{path}[{key}={shown}]"


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{dumps(key)}]"


def _same(before: Any, after: Any) -> bool:
    # As the planner compares: 1 and 1.0 are the same number; true and 1 are not the same value.
    if type(before) is bool or type(after) is bool:
        return type(before) is type(after) and before == after
    if isinstance(before, dict) and isinstance(after, dict):
        return before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before)
    if isinstance(before, list) and isinstance(after, list):
        return len(before) == len(after) and all(map(_same, before, after))
    return bool(before == after)


def _pair(before: str, after: str) -> tuple[str, str]:
    """Two JSON texts, shortened around where they differ when either is long."""
    if len(before) <= LONG and len(after) <= LONG:
        return before, after
    limit = min(len(before), len(after))
    start = 0
    while start < limit and before[start] == after[start]:
        start += 1
    end = 0
    while end < limit - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return _around(before, start, end), _around(after, start, end)


def _around(text: str, start: int, end: int) -> str:
    """`text` with its common head and tail cut to CONTEXT characters, saying how many went."""
    head, middle, tail = text[:start], text[start : len(text) - end], text[len(text) - end :]
    if len(head) > CONTEXT:
        head = f"…({len(head) - CONTEXT} chars)…{head[-CONTEXT:]}"
    if len(tail) > CONTEXT:
        tail = f"{tail[:CONTEXT]}…({len(tail) - CONTEXT} chars)…"
    return head + middle + tail
