"""Strings from users' files made inert for a terminal: one escaping, used everywhere.

Control characters (C0, DEL, C1), line and paragraph separators, and the invisible and
bidirectional format characters (U+200B, U+202E, U+2066, U+FEFF, ...) are shown escaped: `\\n`,
`\\t`, `\\x1b`, `\\u202e`. Nothing else changes, so ordinary strings print as they are. Error
messages (`errors.Problem`) and every line the CLI prints (`reconciler.cli.inert`, which adds the
Markdown and HTML forms) use this one function.
"""

from __future__ import annotations

import re

# Unicode categories Cc (controls), Cf (format: invisible and bidi controls), Zl and Zp (line and
# paragraph separators), and lone surrogates, written out so that importing costs nothing.
# tests/unit/test_inert.py checks it against the running Python's Unicode database: every such
# character escaped, no letter, mark, number, symbol or punctuation touched.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\ud800-\udfff]"
)
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def text(value: str) -> str:
    """`value` safe to print on a terminal: every control or invisible character escaped."""
    return _UNSAFE.sub(_escape, value)
