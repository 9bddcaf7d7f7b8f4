"""`load_desired_state`: the one function that turns `.cloned/` into validated resources.

Flow: discover files -> for each file, a cache hit by content hash, or decode, parse (C safe
loader), validate each document -> cross-resource checks -> either every problem at once
(`ValidationFailed`, nothing written) or a `DesiredState` (and the cache refreshed).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from reconciler.errors import Problem, ValidationFailed
from reconciler.load import refs
from reconciler.load.cache import CachedDocument, ResultCache
from reconciler.load.checkfile import check_files
from reconciler.load.files import CLONED_DIR, SourceFile, decode, discover, find_root
from reconciler.load.resources import DesiredState, LoadedResource
from reconciler.redact import Redactor, active


def load_desired_state(
    start: Path,
    *,
    use_cache: bool = True,
    files: tuple[list[SourceFile], list[Problem]] | None = None,
    revision: str | None = None,
) -> DesiredState:
    """Load and validate the workspace containing `start`; raise `ValidationFailed` if invalid.

    `files` replaces discovery with files read elsewhere (from git objects, at the commit
    `revision`): then the cache is read but never written, so loading a committed revision
    writes nothing."""
    root = find_root(start)
    sources, problems = discover(root) if files is None else (files[0], list(files[1]))
    unreadable = bool(problems)
    cache = ResultCache.open(root) if use_cache else None
    digests = [hashlib.sha256(source.data).hexdigest() for source in sources]
    cached = [cache.get(digest) if cache is not None else None for digest in digests]
    misses = [source for source, hit in zip(sources, cached, strict=True) if hit is None]
    results = iter(check_files(misses))
    resources: list[LoadedResource] = []
    partial: set[tuple[str, str]] = set()
    unparsed = unreadable
    fresh: list[tuple[str, list[CachedDocument]]] = []
    for source, digest, documents in zip(sources, digests, cached, strict=True):
        if documents is None:
            result = next(results)
            problems += result.problems
            partial |= result.partial
            unparsed = unparsed or not result.parsed
            documents = result.documents
            if not result.problems:
                fresh.append((digest, documents))
        resources.extend(_resource(source.rel, document) for document in documents)
    # What the desired packs mask, and what the process already masks (the applied policy's
    # patterns, taught first by the session).
    redactor = Redactor([*redaction_patterns(resources), *active().patterns])
    if cache is not None:
        # The cache is a plain file: a file holding a value to redact is re-validated each run
        # rather than stored (its documents are the desired state, needed verbatim).
        for digest, documents in fresh:
            if not _holds_redacted(redactor, documents):
                cache.put(digest, documents)
    findings = refs.check(resources, also_declared=partial)
    if unparsed:
        # A file that could not be read may declare what these references name: reporting them
        # as dangling would bury the real problem under guesses.
        findings = [finding for finding in findings if not finding.dangling]
    problems += _locate(findings, {source.rel: source for source in sources})
    if problems:
        # Messages may quote a value (`spec.ref: "ghp_..." is not valid`): mask what the
        # desired packs redact, whether or not they are active yet; and teach the process
        # redactor, which every printed line passes, the same patterns.
        active().add_patterns(redactor.patterns)
        raise ValidationFailed([replace(p, message=redactor.text(p.message)) for p in problems])
    if cache is not None and files is None:
        cache.save()
    hits = len(sources) - len(misses)
    return DesiredState(
        root=root,
        resources=tuple(resources),
        files=len(sources),
        cache_hits=hits,
        revision=revision,
    )


def redaction_patterns(resources: list[LoadedResource]) -> tuple[str, ...]:
    """The redaction patterns of every valid PolicyPack among `resources` (desired state)."""
    return tuple(
        str(item["regex"])
        for resource in resources
        if resource.kind == "PolicyPack"
        for item in resource.spec.get("redaction") or ()
    )


def _holds_redacted(redactor: Redactor, documents: list[CachedDocument]) -> bool:
    data = [document[2] for document in documents]
    return bool(redactor.data(data) != data)


def _resource(rel: str, document: CachedDocument) -> LoadedResource:
    index, line, data = document
    return LoadedResource(
        kind=data["kind"],
        name=data["metadata"]["name"],
        file=rel,
        line=line,
        document=index,
        data=data,
    )


def _locate(findings: list[refs.CrossFinding], sources: dict[str, SourceFile]) -> list[Problem]:
    """Problems with line and column for findings made across resources (error path only)."""
    from reconciler.load.positions import Locator

    locators: dict[str, Locator] = {}
    problems = []
    for finding in findings:
        resource = finding.resource
        if resource is None:
            problems.append(Problem(CLONED_DIR, 0, 0, finding.message))
            continue
        locator = locators.get(resource.file)
        if locator is None:
            text = decode(sources[resource.file])
            locator = locators[resource.file] = Locator(text if isinstance(text, str) else "")
        where = locator.find(resource.document, finding.at, key=True)
        line, col = where or (resource.line, 1)
        other = finding.related
        related = (other.file, other.line) if other is not None else None
        problems.append(Problem(resource.file, line, col, finding.message, related))
    return problems
