"""User-controlled strings made inert for a terminal and for Markdown (the one place that does it).

Everything Cloned prints for people (plans, saved plans, approvals, the audit log, policy, drift,
validation errors) holds strings the user, a branch or a saved file chose: names, keys, file
names, labels, comments, values. Printed raw, a control character rewrites what a reviewer sees
(`\\x1b[2K\\r` erases a line, U+202E reverses it), and in a pull-request comment a newline, a code
fence or `</details>` forges structure. Every renderer passes such strings through one function:

- `text(s)`: for a terminal. Control characters (C0, DEL, C1), line and paragraph separators,
  and the invisible and bidirectional format characters (U+200B, U+202E, U+2066, U+FEFF, ...)
  are shown escaped: `\\n`, `\\t`, `\\x1b`, `\\u202e`. Nothing else changes, so ordinary
  strings print as they are.
- `markdown(s)`: for Markdown text (paragraphs, table cells): `text(s)`, then HTML's `& < >`
  as entities and Markdown's punctuation (backticks, `*`, `_`, `[`, `]`, `|`, `~`, `$`, `\\`, a
  leading `#`, `+`, `-`, `=`) behind a backslash.
- `code(s)`: a Markdown code span (no Markdown, HTML, emoji or mentions inside), its backtick
  fence longer than any run of backticks in `s`.
- `html(s)`: for raw HTML (the `<summary>` of a collapsed section): `text(s)`, HTML-escaped.
- `fence(lines, info)`: a fenced code block of `text()`-escaped lines whose fence no line can close.

JSON output is not passed through here: JSON escaping is already inert, and it stays exact.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable

from reconciler.inert import text

__all__ = ["code", "fence", "html", "markdown", "text"]

_MD_PUNCT = re.compile(r"([\\`*_\[\]|~$])")
_MD_LEADING = re.compile(r"^([#+\-=])")
_BACKTICKS = re.compile(r"`+")


def markdown(value: str) -> str:
    """`value` as inert Markdown text: no structure, HTML, emphasis, link or table cell break."""
    shown = _html.escape(text(value), quote=False)
    shown = _MD_PUNCT.sub(r"\\\1", shown)
    return _MD_LEADING.sub(r"\\\1", shown)


def code(value: str, *, cell: bool = False) -> str:
    """`value` as a Markdown code span; `cell=True` inside a table (pipes escaped, as GFM wants)."""
    shown = text(value)
    if cell:
        shown = shown.replace("|", "\\|")
    longest = max((len(run) for run in _BACKTICKS.findall(shown)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{tick}{pad}{shown}{pad}{tick}"


def html(value: str) -> str:
    """`value` as inert raw HTML text."""
    return _html.escape(text(value), quote=True)


def fence(lines: Iterable[str], info: str = "") -> str:
    """A fenced code block of `lines`, each escaped by `text()`; no line can end the block."""
    body = [text(line) for line in lines]
    longest = max((len(run) for line in body for run in _BACKTICKS.findall(line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return "\n".join([f"{ticks}{info}", *body, ticks])
