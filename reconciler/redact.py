"""The redactor: the one filter every output path goes through (terminal, JSON, logs, audit,
lock file). It masks exact values registered at run time (secrets read from a vault) and
anything matching the active policy's redaction patterns.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # no stubs; stable
import re._parser as sre_parse  # type: ignore[import-not-found]  # since 3.11 (was sre_parse)
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter registered values are ignored: masking every "a" would destroy output, not protect."""


def pattern_problem(pattern: str) -> str | None:
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
        return f"regex does not compile: {exc}"
    if parsed.getwidth()[0] == 0:
        return "regex matches the empty string; it would mask between every character"
    if _backtracks(list(parsed), inside_repeat=False):
        return (
            "regex can backtrack exponentially (a repeated group that holds another repeat, "
            "or alternatives that can start alike); rewrite it without nested quantifiers"
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

    def text(self, value: str) -> str:
        """`value` with every secret masked."""
        if not self._values and not self._patterns:
            return value
        known = self._seen.get(value)
        if known is not None:
            return known
        masked = self._mask(value)
        if len(self._seen) < 100_000:
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
