"""A workspace as committed at one revision, read from git objects: no checkout, no writes.

This is what CI and reviewers plan against. `plan --base REF` takes the applied state (and so
the policy and approvers) from REF's `cloned.lock`, and the desired state and approval records
from HEAD's commit; the working tree is not read, so what is planned is what was pushed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler import gitrepo
from reconciler.approvals import records as approval_records
from reconciler.approvals.records import Record
from reconciler.engine import actual as actual_state
from reconciler.engine.actual import ActualState
from reconciler.errors import ClonedError, Problem
from reconciler.load.files import CLONED_DIR, MAX_FILE_BYTES, committed_sources, is_resource_path
from reconciler.load.resources import DesiredState
from reconciler.load.workspace import load_desired_state
from reconciler.model import names

MAX_LOCK_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Revision:
    """A revision as the user named it, and the commit it resolved to."""

    ref: str
    commit: str

    def describe(self) -> str:
        short = gitrepo.short(self.commit)
        return short if self.ref in (self.commit, short) else f"{self.ref} ({short})"


def resolve(root: Path, ref: str, *, flag: str) -> Revision:
    """The revision `ref` names; a clear error naming `flag` when it names no commit."""
    return Revision(ref, gitrepo.resolve(root, ref, flag=flag))


def head(root: Path) -> Revision:
    """The commit checked out (named by its branch, if any); an error before the first commit."""
    where = gitrepo.head(root)
    if where.commit is None:
        raise ClonedError("HEAD: there is no commit yet", hint="commit .cloned/ first")
    return Revision(where.branch or "HEAD", where.commit)


def desired_at(root: Path, revision: Revision) -> DesiredState:
    """The desired state as committed at `revision` (raises `ValidationFailed` if invalid)."""
    files, unreadable = gitrepo.read_files(
        root, revision.commit, CLONED_DIR, max_bytes=MAX_FILE_BYTES + 1, wanted=is_resource_path
    )
    sources = committed_sources(
        [(f.rel, f.data) for f in files], [(u.rel, u.reason) for u in unreadable]
    )
    return load_desired_state(root, files=sources, revision=revision.commit)


def digests_at(root: Path, revision: Revision, rels: list[str]) -> dict[str, str] | None:
    """address -> digest of the resources declared in these files at `revision` (None when a
    file there does not validate on its own); files missing at `revision` declare nothing."""
    from reconciler.canonical import digest
    from reconciler.engine.planner import resource_state
    from reconciler.load.checkfile import check_files
    from reconciler.load.files import SourceFile

    sources = []
    for rel in rels:
        data = gitrepo.read_file(root, revision.commit, rel, max_bytes=MAX_FILE_BYTES)
        if data is not None:
            sources.append(SourceFile(rel, data))
    found: dict[str, str] = {}
    for result in check_files(sources):
        if result.problems:
            return None
        for _index, _line, document in result.documents:
            address = names.address(document["kind"], document["metadata"]["name"])
            found[address] = digest(resource_state(document))
    return found


def actual_at(root: Path, revision: Revision) -> ActualState:
    """The applied state as `cloned.lock` records it at `revision` (empty when it has none)."""
    rel = actual_state.LOCK_FILE.as_posix()
    data = gitrepo.read_file(root, revision.commit, rel, max_bytes=MAX_LOCK_BYTES)
    if data is None:
        return ActualState({}, "empty")
    return actual_state.parse_lock(data, f"{rel} at {revision.describe()}")


def records_at(root: Path, revision: Revision) -> tuple[list[tuple[str, Record]], list[Problem]]:
    """The approval records committed at `revision`."""
    folder = approval_records.APPROVALS_DIR.as_posix()
    files, unreadable = gitrepo.read_files(
        root,
        revision.commit,
        folder,
        max_bytes=approval_records.MAX_RECORD_BYTES,
        wanted=lambda rel: rel.endswith(".json"),
    )
    found, problems = approval_records.read_committed([(f.rel, f.data) for f in files])
    problems += [Problem(u.rel, 0, 0, u.reason) for u in unreadable]
    return found, problems


def uncommitted(root: Path) -> list[str]:
    """Resource files under `.cloned/` that differ from HEAD (Cloned's own files aside)."""
    return [rel for rel in gitrepo.changed_paths(root, [CLONED_DIR]) if is_resource_path(rel)]


def uncommitted_records(root: Path) -> list[str]:
    """Approval records under `.cloned/approvals/` that are not committed as they are."""
    folder = approval_records.APPROVALS_DIR.as_posix()
    return [rel for rel in gitrepo.changed_paths(root, [folder]) if rel.endswith(".json")]
