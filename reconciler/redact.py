"""The redactor: the one filter every output path goes through (terminal, JSON, logs, audit,
lock file). It masks exact values registered at run time (secrets read from a vault) and
anything matching the active policy's redaction patterns.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # no stubs; stable
import re._parser as sre_parse  # type: ignore[import-not-found]  # since 3.11 (was sre_parse)
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter registered values are ignored: masking every "a" would destroy output, not protect."""


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


class Redactor:
    """Masks secrets in strings and in JSON-like data.

    Patterns `pattern_problem` refuses are skipped here too (validation reports them first), so
    no pattern that reached the redactor by another way can garble output or hang it.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._patterns: list[re.Pattern[str]] = []
        self._values: set[str] = set()
        self._combined: re.Pattern[str] | None = None
        # Plans and lock files repeat the same strings (kinds, keys, values) many times.
        self._seen: dict[str, str] = {}
        self.add_patterns(patterns)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns this redactor masks (those it accepted)."""
        return tuple(pattern.pattern for pattern in self._patterns)

    def register(self, value: str) -> None:
        """Mask this exact value from now on (for example a secret just read from the vault)."""
        if len(value) >= MIN_SECRET_LENGTH and value not in self._values:
            self._values.add(value)
            self._combined = None
            self._seen.clear()

    def add_patterns(self, patterns: Iterable[str]) -> None:
        """Mask everything these regular expressions match (each pattern once)."""
        known = {pattern.pattern for pattern in self._patterns}
        for pattern in patterns:
            if pattern not in known and pattern_problem(pattern) is None:
                self._patterns.append(re.compile(pattern))
                known.add(pattern)
                self._seen.clear()

    def text(self, value: str, *, remember: bool = True) -> str:
        """`value` with every secret masked (`remember=False` for a stream of one-off strings,
        such as a connector's stderr, that would only fill the cache)."""
        if not self._values and not self._patterns:
            return value
        known = self._seen.get(value)
        if known is not None:
            return known
        masked = self._mask(value)
        if remember and len(self._seen) < 100_000:
            self._seen[value] = masked
        return masked

    def _mask(self, value: str) -> str:
        if self._values:
            if self._combined is None:
                longest_first = sorted(self._values, key=len, reverse=True)
                self._combined = re.compile("|".join(re.escape(v) for v in longest_first))
            value = self._combined.sub(MASK, value)
        for pattern in self._patterns:
            value = pattern.sub(MASK, value)
        return value

    def data(self, value: Any) -> Any:
        """A copy of JSON-like `value` with every string (keys included) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


_ACTIVE = Redactor()


def active() -> Redactor:
    """The process's redactor: every output path (terminal, JSON, files, audit) uses this one,
    so a pattern or secret registered anywhere is masked everywhere."""
    return _ACTIVE


def start_command() -> Redactor:
    """A fresh active redactor for one command line, so nothing registered by an earlier command
    in the same process (a test, a long-lived caller) changes what this one prints."""
    global _ACTIVE
    _ACTIVE = Redactor()
    return _ACTIVE


class RedactingStream:
    """A text stream that masks secrets in everything written to it (the CLI wraps stdout and
    stderr in one, so nothing printed, by Cloned or by a library, can leak a registered secret).
    """

    def __init__(self, stream: Any, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.text(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
