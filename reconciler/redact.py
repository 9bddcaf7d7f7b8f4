"""The redactor: the one filter every output path goes through (terminal, JSON, logs, audit,
lock file). It masks exact values registered at run time (secrets read from a vault) and
anything matching the active policy's redaction patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter registered values are ignored: masking every "a" would destroy output, not protect."""


class Redactor:
    """Masks secrets in strings and in JSON-like data."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._patterns = [re.compile(pattern) for pattern in patterns]
        self._values: set[str] = set()
        self._combined: re.Pattern[str] | None = None
        # Plans and lock files repeat the same strings (kinds, keys, values) many times.
        self._seen: dict[str, str] = {}

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
            if pattern not in known:
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
