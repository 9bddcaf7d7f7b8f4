"""Line and column of a path inside a YAML file, for error messages only.

The fast path parses with the C safe loader, which keeps no positions. When something must be
reported, the file is parsed again here in ruamel's round-trip mode, whose containers remember
where each key and item starts. Only files with problems pay for this.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from reconciler.load.yamlio import Path


class Locator:
    """Positions (1-based line, col) inside one file's text, parsed lazily on first use."""

    def __init__(self, text: str) -> None:
        self._text = text

    @cached_property
    def _documents(self) -> list[Any]:
        from ruamel.yaml import YAML

        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = True
        try:
            return list(yaml.load_all(self._text))
        except Exception:  # noqa: BLE001 - best effort: the text already parsed once
            return []

    def find(self, document: int, at: Path, *, key: bool = False) -> tuple[int, int] | None:
        """Where `at` is in `document`: its value, or its key when `key` is set.

        A path that runs past what exists (a missing field) resolves to the deepest part that
        exists, so a "missing field" points at the mapping that lacks it.
        """
        if not 0 <= document < len(self._documents):
            return None
        node = self._documents[document]
        best = _start_of(node)
        for depth, part in enumerate(at):
            last = depth == len(at) - 1
            position = _child_position(node, part, key=key and last)
            if position is None:
                return best
            if best is not None and position <= best:
                # An alias: the child is the anchored node, written earlier in the file. The
                # place to show is where the alias is used, which is the best found so far.
                return best
            best = position
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return best
        return best


def _start_of(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return lc.line + 1, lc.col + 1


def _child_position(node: Any, part: str | int, *, key: bool) -> tuple[int, int] | None:
    """Position of a child: an item, a key, or a scalar value. Nested mappings and sequences
    are reported at their key, which is where a reader looks for them."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if isinstance(node, list):
            line, col = lc.item(part)
        elif key or node[part] is None or isinstance(node[part], dict | list):
            line, col = lc.key(part)
        else:
            line, col = lc.value(part)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return line + 1, col + 1
