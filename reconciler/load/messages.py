"""Small helpers for wording problems; standard library only, so the cached path stays light."""

from __future__ import annotations

import difflib

from reconciler.load.yamlio import Path


def did_you_mean(word: str, options: list[str]) -> str:
    """`' (did you mean "x"?)'` for the closest of `options`, or an empty string."""
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.7)
    if not match:
        lowered = {option.lower(): option for option in options}
        if word.lower() in lowered:
            match = [lowered[word.lower()]]
    return f' (did you mean "{match[0]}"?)' if match else ""


def dotted(loc: Path) -> str:
    """`spec.approvers[0].name` for a path into a document."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
