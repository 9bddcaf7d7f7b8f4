"""Parse one YAML file safely: C-backed safe loader, plain data only, bounded expansion.

Everything here works on text already decoded by `files.py`; it raises `YamlProblem` with a
0-based line and column, which the caller turns into a `Problem` naming the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_NODES_PER_DOCUMENT = 100_000
"""Scalars and collections one document may expand to, aliases counted at every use."""

MAX_DEPTH = 64

Path = tuple[str | int, ...]
"""A path into a document: mapping keys and sequence indexes."""

_DOC_MARKER = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)


class YamlProblem(Exception):
    """A problem at a 0-based (line, col) of the text being parsed."""

    def __init__(
        self,
        line: int,
        col: int,
        message: str,
        *,
        document: int = -1,
        at: Path = (),
        key: bool = False,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message
        # When set, the caller can refine the position: key path `at` inside document `document`.
        self.document = document
        self.at = at
        self.key = key


@dataclass(frozen=True)
class Document:
    """One YAML document of a file: its position in the file and its plain data."""

    index: int
    line: int  # 1-based line of the document's first content
    data: Any


def _tab_in_indent(text: str, line: int) -> int | None:
    """Column of a tab in the leading whitespace of `line` (0-based), if there is one."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    content = lines[line]
    indent = content[: len(content) - len(content.lstrip(" \t"))]
    return indent.index("\t") if "\t" in indent else None


def parse(text: str) -> list[Document]:
    """Every non-empty document of `text`, as plain data, or raise `YamlProblem`."""
    raw = _safe_load_all(text)
    starts = _document_lines(text, len(raw))
    docs = []
    for index, data in enumerate(raw):
        if data is None:
            continue
        problem = _check_plain(data)
        if problem is not None:
            at, message, on_key = problem
            raise YamlProblem(starts[index] - 1, 0, message, document=index, at=at, key=on_key)
        docs.append(Document(index=index, line=starts[index], data=data))
    return docs


def _check_nesting(text: str) -> None:
    """Raise `YamlProblem` where a collection nests deeper than `MAX_DEPTH`, before composing.

    The composer recurses once per nesting level, so 30,000 `[` (60 KB) overflow the C stack
    and kill the process. libyaml's event parser keeps an explicit stack, so walking its events
    is safe at any depth, linear, and gives the exact line and column. Aliases add no events:
    what they expand to is bounded by `_check_plain` after composing. A syntax error ends the
    walk; the load that follows reports it, composing no deeper than what was walked.
    """
    from _ruamel_yaml import (  # type: ignore[import-not-found]  # ruamel's C parser, untyped
        CParser,
        MappingEndEvent,
        MappingStartEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )
    from ruamel.yaml.error import YAMLError

    parser = CParser(text)
    depth = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, SequenceStartEvent | MappingStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1:  # the root collection is at depth 1, path length 0
                    mark = event.start_mark
                    raise YamlProblem(
                        mark.line, mark.column, f"nesting deeper than {MAX_DEPTH} levels"
                    )
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                depth -= 1
    except (YAMLError, ValueError, TypeError):
        return
    finally:
        parser.dispose()


def _safe_load_all(text: str) -> list[Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="safe", pure=False)
    try:
        _check_nesting(text)
        return list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        # Tabs are only reported when they break parsing: a tab inside a block scalar is text.
        tab = _tab_in_indent(text, line)
        if tab is not None:
            raise YamlProblem(
                line, tab, "tab character in indentation; YAML needs spaces"
            ) from None
        raise YamlProblem(line, col, _describe_yaml_error(exc)) from None
    except ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n")
        col = len(before) - (before.rfind("\n") + 1)
        code = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        )
        raise YamlProblem(
            line, col, f"control character U+{code:04X} is not allowed in YAML"
        ) from None
    except (YAMLError, ValueError, TypeError) as exc:
        # ruamel raises TypeError for unhashable keys such as `? [a]`.
        raise YamlProblem(0, 0, f"invalid YAML: {exc}") from None


def _describe_yaml_error(exc: Any) -> str:
    problem = str(exc.problem or exc.context or "invalid YAML").strip()
    if problem.startswith("found duplicate key"):
        match = re.match(r'found duplicate key "(.*?)"', problem)
        key = match.group(1) if match else "?"
        return f'duplicate key "{key}"'
    if "could not determine a constructor for the tag" in problem:
        tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return f"YAML tag {tag} is not allowed: resources hold plain data only"
    if problem == "found character that cannot start any token":
        return "invalid YAML: a character here cannot start a value (quote it)"
    return f"invalid YAML: {problem}"


def _document_lines(text: str, count: int) -> list[int]:
    """1-based line of each document's first content line, found without a second parse."""
    lines = text.splitlines()
    markers = [text.count("\n", 0, match.start()) for match in _DOC_MARKER.finditer(text)]
    first_content = _first_content(lines, 0)
    if not markers or (first_content is not None and first_content < markers[0]):
        markers.insert(0, -1)
    starts = []
    for marker in markers[:count]:
        content = _first_content(lines, marker + 1)
        starts.append((content if content is not None else max(marker, 0)) + 1)
    while len(starts) < count:
        starts.append(1)
    return starts


def _first_content(lines: list[str], start: int) -> int | None:
    for number in range(start, len(lines)):
        stripped = lines[number].strip()
        if stripped and not stripped.startswith(("#", "%")):
            if stripped.startswith("---"):
                return None if number != start else number
            return number
    return None


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _yaml_scalar(value: Any) -> str:
    """A scalar spelled as YAML writes it (`true`, `null`), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_plain(data: Any) -> tuple[Path, str, bool] | None:
    """Where and why `data` is not plain JSON-like data of bounded size (and whether the key
    is at fault); None when it is."""
    budget = [MAX_NODES_PER_DOCUMENT]
    trail: list[str | int] = []
    bad_key = [False]

    def walk(node: Any) -> str | None:
        budget[0] -= 1
        if budget[0] < 0:
            return (
                f"document expands to more than {MAX_NODES_PER_DOCUMENT:,} values "
                "(an alias/anchor expansion bomb?)"
            )
        if len(trail) > MAX_DEPTH:
            return f"nesting deeper than {MAX_DEPTH} levels (or a recursive alias)"
        if isinstance(node, dict):
            for key, value in node.items():
                trail.append(key)
                if not isinstance(key, str):
                    bad_key[0] = True
                    return f"mapping key {_yaml_scalar(key)} is not a string; quote it"
                found = walk(value)
                if found:
                    return found
                trail.pop()
        elif isinstance(node, list):
            for position, item in enumerate(node):
                trail.append(position)
                found = walk(item)
                if found:
                    return found
                trail.pop()
        elif isinstance(node, float) and not math.isfinite(node):
            return "numbers must be finite: .inf, .nan and values beyond 1.8e308 are not allowed"
        elif not isinstance(node, _PLAIN_SCALARS):
            return (
                f"a value of type {type(node).__name__} is not plain data "
                "(dates, binary and sets are not allowed; quote the value)"
            )
        return None

    message = walk(data)
    return None if message is None else (tuple(trail), message, bad_key[0])
