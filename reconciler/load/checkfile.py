"""Check one resource file in isolation: decode, parse, validate, and locate its problems.

`check_file` is a pure function of the file's bytes, so files can be checked in any order and
in worker processes: on a cold load of a large workspace `check_files` spreads them over the
machine's cores (parsing YAML is the dominant cost and holds the GIL).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import Problem
from reconciler.load.cache import CachedDocument
from reconciler.load.files import SourceFile, decode

PARALLEL_MIN_BYTES = 512 * 1024
"""Below this much YAML to parse, a worker pool costs more than it saves."""


@dataclass(frozen=True)
class FileResult:
    """The verdict on one file: its valid documents and the problems of the others.

    A file with problems is never cached, but its valid documents still take part in the
    cross-resource checks, so one run reports every problem it can.
    """

    rel: str
    documents: list[CachedDocument]
    problems: list[Problem] = field(default_factory=list)
    # (kind, name) of documents that failed validation but clearly declare a resource.
    partial: frozenset[tuple[str, str]] = frozenset()
    # False when the file could not be read or parsed at all: what it declares is unknown.
    parsed: bool = True


def check_file(source: SourceFile) -> FileResult:
    """Decode, parse and validate every document of one file."""
    from reconciler.load.positions import Locator
    from reconciler.load.validate import validate_document
    from reconciler.load.yamlio import YamlProblem, parse

    text = decode(source)
    if isinstance(text, Problem):
        return FileResult(source.rel, [], [text], parsed=False)
    locator = Locator(text)
    try:
        parsed = parse(text)
    except YamlProblem as exc:
        position = (exc.line + 1, exc.col + 1)
        if exc.document >= 0:
            position = locator.find(exc.document, exc.at, key=exc.key) or position
        problem = Problem(source.rel, *position, exc.message)
        return FileResult(source.rel, [], [problem], parsed=False)
    documents: list[CachedDocument] = []
    problems: list[Problem] = []
    partial: set[tuple[str, str]] = set()
    for document in parsed:
        findings, normalised = validate_document(document.data)
        if normalised is not None:
            documents.append((document.index, document.line, normalised))
            continue
        declared = _declared(document.data)
        if declared is not None:
            partial.add(declared)
        for finding in findings:
            where = locator.find(document.index, finding.at, key=finding.key)
            line, col = where or (document.line, 1)
            problems.append(Problem(source.rel, line, col, finding.message))
    return FileResult(source.rel, documents, problems, frozenset(partial))


def _declared(data: Any) -> tuple[str, str] | None:
    # A resource whose document is invalid still exists as far as references go: saying
    # "no Budget named x" when x merely has a typo would bury the real problem.
    if not isinstance(data, dict):
        return None
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = data.get("kind")
    return (kind, name) if isinstance(kind, str) and isinstance(name, str) else None


def check_files(sources: list[SourceFile]) -> list[FileResult]:
    """`check_file` for each source, in order; in worker processes when that pays off."""
    workers = _workers(sources)
    if workers < 2:
        return [check_file(source) for source in sources]
    # Import the parser and the models once, before forking, so workers inherit them.
    from concurrent.futures import ProcessPoolExecutor

    import reconciler.load.validate
    import reconciler.load.yamlio  # noqa: F401

    context = multiprocessing.get_context("fork")
    chunk = max(1, len(sources) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(check_file, sources, chunksize=chunk))


def _workers(sources: list[SourceFile]) -> int:
    if len(sources) < 2 or sum(len(source.data) for source in sources) < PARALLEL_MIN_BYTES:
        return 1
    # fork keeps start-up cheap and is safe here (no threads yet); elsewhere stay sequential.
    if not sys.platform.startswith("linux"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cores or 1, 8, len(sources))
