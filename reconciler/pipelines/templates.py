"""Finding `${...}` templates in a string: the text around them and the expression inside.

A template ends at the `}` that closes its `${`, counting the braces of JMESPath's own
multi-select hashes and skipping what its quoted strings and JSON literals hold, so
`${ {a: inputs.x} }` and `${'}'}` are one template each. `$${` writes a literal `${`.
"""

from __future__ import annotations

from collections.abc import Callable

OPEN = "${"
ESCAPED_OPEN = "$${"
QUOTES = {"'": "'", '"': '"', "`": "`"}
"""JMESPath's raw strings, quoted identifiers and JSON literals: braces in them do not count."""

Fail = Callable[[str, str, str], Exception]
"""Builds the error for (expression text, what is wrong, the template as written)."""


def split(text: str, fail: Fail) -> list[str | tuple[str]]:
    """`text` as literal pieces (str) and expressions (a 1-tuple of the text inside `${}`)."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    at = 0
    while True:
        dollar = text.find("$", at)
        if dollar < 0:
            literal.append(text[at:])
            break
        literal.append(text[at:dollar])
        if text.startswith(ESCAPED_OPEN, dollar):
            literal.append(OPEN)
            at = dollar + len(ESCAPED_OPEN)
        elif text.startswith(OPEN, dollar):
            end = _close(text, dollar + len(OPEN), fail)
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append((text[dollar + len(OPEN) : end],))
            at = end + 1
        else:
            literal.append("$")
            at = dollar + 1
    if "".join(literal):
        parts.append("".join(literal))
    return parts


def holds_template(text: str) -> bool:
    """Whether `text` may hold a template (a cheap test before `split`)."""
    return OPEN in text


def _close(text: str, start: int, fail: Fail) -> int:
    """The index of the `}` that ends the template whose expression starts at `start`."""
    depth = 0
    at = start
    while at < len(text):
        char = text[at]
        if char in QUOTES:
            end = _past_quote(text, at)
            if end < 0:
                rest = text[start:]
                raise fail(rest, f"the quote {char} is not closed", OPEN + rest)
            at = end
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return at
            depth -= 1
        at += 1
    rest = text[start:]
    raise fail(rest, "no closing } (write $${ for a literal ${)", OPEN + rest)


def _past_quote(text: str, at: int) -> int:
    """The index just past the quote that closes the one at `at`, or -1."""
    quote = text[at]
    at += 1
    while at < len(text):
        if text[at] == "\\":
            at += 2
            continue
        if text[at] == quote:
            return at + 1
        at += 1
    return -1
