"""`load_desired_state`: the one function that turns `.cloned/` into validated resources.

Flow: discover files -> for each file, a cache hit by content hash, or decode, parse (C safe
loader), validate each document -> cross-resource checks -> either every problem at once
(`ValidationFailed`, nothing written) or a `DesiredState` (and the cache refreshed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import Problem, ValidationFailed
from reconciler.load import refs
from reconciler.load.cache import CachedDocument, ResultCache
from reconciler.load.files import CLONED_DIR, SourceFile, decode, discover, find_root
from reconciler.load.resources import DesiredState, LoadedResource


def load_desired_state(start: Path, *, use_cache: bool = True) -> DesiredState:
    """Load and validate the workspace containing `start`; raise `ValidationFailed` if invalid."""
    root = find_root(start)
    sources, problems = discover(root)
    cache = ResultCache.open(root) if use_cache else None
    run = _Run(sources={source.rel: source for source in sources})
    resources: list[LoadedResource] = []
    hits = 0
    for source in sources:
        digest = hashlib.sha256(source.data).hexdigest()
        documents = cache.get(digest) if cache is not None else None
        if documents is not None:
            hits += 1
        else:
            documents = run.load_file(source)
            if documents is None:
                continue
            if cache is not None:
                cache.put(digest, documents)
        resources.extend(_resource(source.rel, document) for document in documents)
    problems += run.problems
    problems += run.locate_cross(refs.check(resources, also_declared=run.partial))
    if problems:
        raise ValidationFailed(problems)
    if cache is not None:
        cache.save()
    return DesiredState(root=root, resources=tuple(resources), files=len(sources), cache_hits=hits)


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


@dataclass
class _Run:
    """Problems of one load, and what is needed to put a line and column on each."""

    sources: dict[str, SourceFile]
    problems: list[Problem] = field(default_factory=list)
    partial: set[tuple[str, str]] = field(default_factory=set)
    _texts: dict[str, str] = field(default_factory=dict)
    _locators: dict[str, object] = field(default_factory=dict)

    def load_file(self, source: SourceFile) -> list[CachedDocument] | None:
        """The file's valid documents, or None after recording its problems."""
        from reconciler.load.validate import check_document
        from reconciler.load.yamlio import YamlProblem, parse

        text = decode(source)
        if isinstance(text, Problem):
            self.problems.append(text)
            return None
        self._texts[source.rel] = text
        try:
            parsed = parse(text)
        except YamlProblem as exc:
            position = (exc.line + 1, exc.col + 1)
            if exc.document >= 0:
                position = self._find(source.rel, exc.document, exc.at, key=exc.key) or position
            self.problems.append(Problem(source.rel, *position, exc.message))
            return None
        documents: list[CachedDocument] = []
        failed = False
        for document in parsed:
            findings = check_document(document.data)
            if not findings:
                documents.append((document.index, document.line, document.data))
                continue
            failed = True
            self._remember_partial(document.data)
            for finding in findings:
                where = self._find(source.rel, document.index, finding.at, key=finding.key)
                line, col = where or (document.line, 1)
                self.problems.append(Problem(source.rel, line, col, finding.message))
        return None if failed else documents

    def _remember_partial(self, data: object) -> None:
        # A resource whose document is invalid still exists as far as references go: saying
        # "no Budget named x" when x merely has a typo would bury the real problem.
        if isinstance(data, dict):
            metadata = data.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            if isinstance(data.get("kind"), str) and isinstance(name, str):
                self.partial.add((data["kind"], name))

    def locate_cross(self, findings: list[refs.CrossFinding]) -> list[Problem]:
        """Problems with positions for findings made across resources."""
        problems = []
        for finding in findings:
            resource = finding.resource
            if resource is None:
                problems.append(Problem(CLONED_DIR, 0, 0, finding.message))
                continue
            where = self._find(resource.file, resource.document, finding.at, key=True)
            line, col = where or (resource.line, 1)
            other = finding.related
            related = (other.file, other.line) if other is not None else None
            problems.append(Problem(resource.file, line, col, finding.message, related))
        return problems

    def _find(
        self, rel: str, document: int, at: tuple[str | int, ...], *, key: bool = False
    ) -> tuple[int, int] | None:
        from reconciler.load.positions import Locator

        locator = self._locators.get(rel)
        if locator is None:
            text = self._texts.get(rel)
            if text is None:
                decoded = decode(self.sources[rel])
                text = decoded if isinstance(decoded, str) else ""
            locator = self._locators[rel] = Locator(text)
        assert isinstance(locator, Locator)
        return locator.find(document, at, key=key)
