"""The redactor: the one filter every output path goes through (terminal, JSON, logs, audit,
lock file). It masks exact values registered at run time (secrets read from a vault) and
anything matching the active policy's redaction patterns.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reconciler.patterncheck import pattern_problem

if TYPE_CHECKING:
    from ahocorasick_rs import AhoCorasick

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter registered values are ignored: masking every "a" would destroy output, not protect."""


Span = tuple[int, int]
"""A (start, end) range of a string to mask."""


class Redactor:
    """Masks secrets in strings and in JSON-like data.

    A registered value is masked in every form `reconciler.secretforms.forms` gives (its
    encodings), all found by one Aho-Corasick automaton (ahocorasick-rs), so the cost grows with
    the text, not with the number of values. Values and patterns are all matched on the original
    text and every character any match covers is masked: overlapping or nested values leave
    nothing of either visible, and a pattern still masks all it matches when a value sits inside.

    Patterns `pattern_problem` refuses are skipped here too (validation reports them first), so
    no pattern that reached the redactor by another way can garble output or hang it.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._patterns: list[re.Pattern[str]] = []
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._automaton: AhoCorasick | None = None
        self._prefixes: tuple[list[str], list[str]] | None = None
        self._longest = 0
        # Plans and lock files repeat the same strings (kinds, keys, values) many times.
        self._seen: dict[str, str] = {}
        self.add_patterns(patterns)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns this redactor masks (those it accepted)."""
        return tuple(pattern.pattern for pattern in self._patterns)

    @property
    def longest(self) -> int:
        """The length of the longest registered form (0 when none)."""
        return self._longest

    def register(self, value: str) -> None:
        """Mask this exact value and its encodings from now on (for example a secret just read
        from the vault); shorter than `MIN_SECRET_LENGTH`, it is ignored."""
        if len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        from reconciler.secretforms import forms

        self._values.add(value)
        new = forms(value) - self._forms
        if new:
            self._forms |= new
            self._longest = max(self._longest, *map(len, new))
            self._automaton, self._prefixes = None, None
            self._seen.clear()

    def add_patterns(self, patterns: Iterable[str]) -> None:
        """Mask everything these regular expressions match (each pattern once)."""
        known = {pattern.pattern for pattern in self._patterns}
        for pattern in patterns:
            if pattern not in known and pattern_problem(pattern) is None:
                self._patterns.append(re.compile(pattern))
                known.add(pattern)
                self._seen.clear()

    @property
    def masks_anything(self) -> bool:
        """Whether any value or pattern is registered (else every text passes unchanged)."""
        return bool(self._forms or self._patterns)

    def text(self, value: str, *, remember: bool = True) -> str:
        """`value` with every secret masked (`remember=False` for a stream of one-off strings,
        such as a connector's stderr, that would only fill the cache)."""
        if not self._forms and not self._patterns:
            return value
        known = self._seen.get(value)
        if known is not None:
            return known
        masked = mask(value, self.spans(value))
        if remember and len(self._seen) < 100_000:
            self._seen[value] = masked
        return masked

    def spans(self, value: str) -> list[Span]:
        """Where `value` must be masked: sorted, overlaps merged (adjacent matches stay two)."""
        found: list[Span] = []
        if self._forms:
            matches = self._matcher().find_matches_as_indexes(value, overlapping=True)
            found += [(start, end) for _, start, end in matches]
        for pattern in self._patterns:
            found += [match.span() for match in pattern.finditer(value)]
        return _merged(found)

    def _matcher(self) -> AhoCorasick:
        if self._automaton is None:
            from ahocorasick_rs import AhoCorasick

            # Standard semantics with overlapping matches: every occurrence of every form is
            # reported, so nested and overlapping values are masked whole (see `spans`).
            self._automaton = AhoCorasick(sorted(self._forms))
        return self._automaton

    def safe_cut(self, value: str, cut: int, spans: list[Span]) -> int:
        """The largest index up to `cut` where a stream may stop writing `value` (its `spans`)
        without splitting a secret: not inside a match, and not before the start of a tail of
        `value` that more text could complete into a registered form."""
        cut = min(cut, self._could_continue(value, cut))
        for start, end in spans:
            if start < cut < end:
                return start
        return cut

    def _could_continue(self, value: str, cut: int) -> int:
        """The first index before `cut` where the rest of `value` is a proper prefix of a form
        (`cut` when there is none). Right after a newline only forms that hold one can."""
        if self._prefixes is None:
            ordered = sorted(self._forms)
            self._prefixes = ordered, [form for form in ordered if "\n" in form]
        every, multiline = self._prefixes
        forms = multiline if cut and value[cut - 1] == "\n" else every
        if not forms:
            return cut
        for index in range(max(0, len(value) - self._longest + 1), cut):
            rest = value[index:]
            at = bisect.bisect_right(forms, rest)
            if at < len(forms) and forms[at].startswith(rest):
                return index
        return cut

    def data(self, value: Any) -> Any:
        """A copy of JSON-like `value` with every string (keys included) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def _merged(spans: list[Span]) -> list[Span]:
    """`spans` sorted, empty ones dropped, overlapping ones joined."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if start >= end:
            continue
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def mask(value: str, spans: list[Span]) -> str:
    """`value` with each of `spans` (sorted, disjoint, inside `value`) replaced by `MASK`."""
    if not spans:
        return value
    parts, position = [], 0
    for start, end in spans:
        parts += [value[position:start], MASK]
        position = end
    parts.append(value[position:])
    return "".join(parts)


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


HOLD_LIMIT = 256 * 1024
"""A stream holds back at most about this many characters of an unfinished line."""


class RedactingStream:
    """A text stream that masks secrets in everything written to it (the CLI wraps stdout and
    stderr in one, so nothing printed, by Cloned or by a library, can leak a registered secret).

    A secret written in pieces (`print(a, b)`, `echo(..., nl=False)`) is masked whole: text is
    passed on up to the last newline, and `flush` passes on the rest but for a tail that more
    text could complete into a registered form (a value that holds newlines is held across them
    too). `release` passes on everything; the CLI calls it when the command ends.
    """

    def __init__(self, stream: Any, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor
        self._pending: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        if not self._pending and not self._redactor.masks_anything:
            self._stream.write(text)
            return len(text)
        newline = text.rfind("\n")
        self._pending.append(text)
        self._size += len(text)
        if newline >= 0:
            self._emit(self._size - len(text) + newline + 1)
        elif self._size > HOLD_LIMIT:
            self._emit(self._size)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._emit(self._size)
        self._stream.flush()

    def release(self) -> None:
        """Pass on everything held back, whatever it is, and flush (the output is over)."""
        self._emit(self._size, final=True)
        self._stream.flush()

    def _emit(self, cut: int, *, final: bool = False) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        spans = self._redactor.spans(text)
        if not final:
            cut = self._redactor.safe_cut(text, cut, spans)
        if cut <= 0:
            self._pending = [text]
            return
        self._stream.write(mask(text[:cut], [span for span in spans if span[1] <= cut]))
        rest = text[cut:]
        self._pending, self._size = ([rest] if rest else []), len(rest)

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
