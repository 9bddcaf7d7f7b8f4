"""Whether a regular expression is safe as a redaction pattern (`pattern_problem`): it must
compile, never match the empty string, and not backtrack badly. Validation refuses unsafe
patterns with the reason; the redactor (reconciler.redact) skips them.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # no stubs; stable
import re._parser as sre_parse  # type: ignore[import-not-found]  # since 3.11 (was sre_parse)
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class PatternProblem:
    """Why a pattern is refused: `kind` for callers to branch on, `text` for people."""

    kind: Literal["compile", "empty", "exponential", "polynomial"]
    text: str


def pattern_problem(pattern: str) -> PatternProblem | None:
    """Why `pattern` cannot be a redaction pattern, or None when it can.

    A pattern must compile, must not match an empty string anywhere (`z*`, `\\b`: it would
    mask between every character and garble every output, the lock and the audit log), and must
    not backtrack exponentially. The last is judged on the pattern's structure, not by timing:
    a repeat whose body holds another repeat (`(a+)+`) or alternatives that can start alike
    (`(a|ab)*`) is refused.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return PatternProblem("compile", f"regex does not compile: {exc}")
    if parsed.getwidth()[0] == 0:
        return PatternProblem(
            "empty", "regex matches the empty string; it would mask between every character"
        )
    if _backtracks(list(parsed), inside_repeat=False):
        return PatternProblem(
            "exponential",
            "regex can backtrack exponentially (a repeated group that holds another repeat, "
            "or alternatives that can start alike); rewrite it without nested quantifiers",
        )
    if _ambiguous_run(parsed):
        return PatternProblem(
            "polynomial",
            "regex can backtrack polynomially (repeats of the same characters side by side, "
            "like a*a*b); merge them into one repeat",
        )
    return None


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


def _backtracks(items: list[Any], *, inside_repeat: bool) -> bool:
    """Whether a parsed (sub)pattern nests repeats, or repeats ambiguous alternatives."""
    for op, arg in items:
        if op in _REPEATS:
            low, high, body = arg
            repeats = high is sre_constants.MAXREPEAT or high > 1
            if repeats and inside_repeat and high != low:
                return True
            if _backtracks(list(body), inside_repeat=inside_repeat or repeats):
                return True
        elif op is sre_constants.BRANCH:
            branches = arg[1]
            if inside_repeat and not _distinct_starts(branches):
                return True
            if any(_backtracks(list(b), inside_repeat=inside_repeat) for b in branches):
                return True
        elif op is sre_constants.SUBPATTERN:
            if _backtracks(list(arg[-1]), inside_repeat=inside_repeat):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT, sre_constants.ATOMIC_GROUP):
            body = arg[-1] if isinstance(arg, tuple) else arg
            if _backtracks(list(body), inside_repeat=inside_repeat):
                return True
    return False


Ranges = list[tuple[int, int]] | None
"""The characters a (sub)pattern can match, as code-point ranges; None for "any"."""


def _ambiguous_run(parsed: Any) -> bool:
    """Whether some sequence, at any depth, has two variable repeats that can match the same
    characters with nothing required between them (`a*a*b`, `\\w+\\w*@`): each such repeat
    multiplies the ways a failing match is retried."""
    state = parsed.state
    folded = bool(state.flags & re.IGNORECASE)
    for sequence in _sequences(list(parsed)):
        open_sets: list[Ranges] = []
        for item in sequence:
            op, arg = item
            if op in _REPEATS and arg[0] != arg[1]:
                chars = _fold(_chars([item])) if folded else _chars([item])
                if any(_overlap(chars, other) for other in open_sets):
                    return True
                open_sets.append(chars)
            elif sre_parse.SubPattern(state, [item]).getwidth()[0] > 0:
                open_sets = []  # something must match here: the repeats on each side stay apart
    return False


def _sequences(items: list[Any]) -> list[list[Any]]:
    """`items` and every sequence nested in it (groups, alternatives, repeat bodies)."""
    found = [items]
    for op, arg in items:
        if op in _REPEATS:
            found += _sequences(list(arg[2]))
        elif op is sre_constants.SUBPATTERN:
            found += _sequences(list(arg[-1]))
        elif op is sre_constants.BRANCH:
            for branch in arg[1]:
                found += _sequences(list(branch))
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT, sre_constants.ATOMIC_GROUP):
            found += _sequences(list(arg[-1] if isinstance(arg, tuple) else arg))
    return found


_MAX_CHAR = 0x10FFFF
# Exactly the characters `\s` matches in a str pattern (str.isspace), so `\s` and `\S` are
# known to be apart; digits are over-approximated (a superset only ever refuses more).
_SPACE = [(9, 13), (28, 32), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A)]
_SPACE += [(0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]
_CATEGORIES: dict[Any, list[tuple[int, int]]] = {
    sre_constants.CATEGORY_SPACE: _SPACE,
    sre_constants.CATEGORY_DIGIT: [(48, 57), (0x660, _MAX_CHAR)],
}


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    return [*out, (start, _MAX_CHAR)] if start <= _MAX_CHAR else out


def _class_chars(members: list[Any]) -> Ranges:
    """The characters a `[...]` class matches; None where that is not worked out."""
    ranges: list[tuple[int, int]] = []
    negate = False
    for kind, value in members:
        if kind is sre_constants.NEGATE:
            negate = True
        elif kind is sre_constants.LITERAL:
            ranges.append((value, value))
        elif kind is sre_constants.RANGE:
            ranges.append(value)
        elif kind is sre_constants.CATEGORY and value in _CATEGORIES:
            ranges += _CATEGORIES[value]
        elif kind is sre_constants.CATEGORY and value is sre_constants.CATEGORY_NOT_SPACE:
            ranges += _complement(_SPACE)
        else:
            return None
    return _complement(ranges) if negate else ranges


def _chars(items: list[Any]) -> Ranges:
    """Every character `items` can match (None: possibly any)."""
    ranges: list[tuple[int, int]] = []
    for op, arg in items:
        if op is sre_constants.LITERAL:
            inner: Ranges = [(arg, arg)]
        elif op is sre_constants.IN:
            inner = _class_chars(list(arg))
        elif op in _REPEATS:
            inner = _chars(list(arg[2]))
        elif op is sre_constants.SUBPATTERN:
            inner = _chars(list(arg[-1]))
        elif op is sre_constants.AT:
            inner = []  # an anchor matches no character
        else:
            inner = None
        if inner is None:
            return None
        ranges += inner
    return ranges


def _fold(ranges: Ranges) -> Ranges:
    """`ranges` with the other case of every ASCII letter in them (for `(?i)` patterns)."""
    if ranges is None:
        return None
    extra = []
    for lo, hi in ranges:
        for point in range(max(lo, 65), min(hi, 122) + 1):
            char = chr(point)
            extra += [(ord(c), ord(c)) for c in (char.lower(), char.upper()) if c.isascii()]
    return ranges + extra


def _overlap(a: Ranges, b: Ranges) -> bool:
    if a is None or b is None:
        return True
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)


def _distinct_starts(branches: list[Any]) -> bool:
    """Whether every alternative starts with a literal character no other one starts with."""
    starts = []
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] is not sre_constants.LITERAL:
            return False
        starts.append(items[0][1])
    return len(set(starts)) == len(starts)
