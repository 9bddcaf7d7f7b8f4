"""Reading a workspace as committed at some revision, straight from git objects, with no
checkout and no writes: revisions for CI dry-runs and `--base REF` (engine/revision.py), what a
plan changes against its base (engine/preview.py), and whether the history has applied state
(engine/preflight.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ClonedError
from reconciler.gitrepo.repo import _git_errors, _in_tree, _prefix, _repo, _repo_or_none, short

if TYPE_CHECKING:
    import git

SYMLINK_MODE = 0o120000
LINK_HOPS = 8


@dataclass(frozen=True)
class CommittedFile:
    """A file as committed: its path relative to the workspace root, and its bytes."""

    rel: str
    data: bytes


@dataclass(frozen=True)
class Unreadable:
    """A committed path that cannot be read as a file, and why."""

    rel: str
    reason: str


def read_files(
    root: Path,
    commit: str,
    folder: str,
    *,
    max_bytes: int,
    wanted: Callable[[str], bool] = lambda rel: True,
) -> tuple[list[CommittedFile], list[Unreadable]]:
    """The files under `folder` (relative to the workspace root `root`) at `commit` whose path
    `wanted` accepts, sorted by path. Symlinks are followed only to files inside the same
    commit; files over `max_bytes` are reported, not read."""

    with _git_errors(f"cannot read {folder} at {short(commit)}"):
        return _read_files(root, commit, folder, max_bytes=max_bytes, wanted=wanted)


def _read_files(
    root: Path, commit: str, folder: str, *, max_bytes: int, wanted: Callable[[str], bool]
) -> tuple[list[CommittedFile], list[Unreadable]]:
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    tree = repo.commit(commit).tree
    top = _in_tree(prefix, folder)
    try:
        sub = tree / top
    except KeyError:
        return [], []
    found: list[CommittedFile] = []
    problems: list[Unreadable] = []
    blobs = [item for item in sub.traverse() if isinstance(item, git.Blob)]
    for item in blobs:
        path = str(item.path)
        rel = posixpath.relpath(path, prefix) if prefix else path
        if not wanted(rel):
            continue
        blob = _follow(tree, item)
        if isinstance(blob, str):
            problems.append(Unreadable(rel, blob))
            continue
        # The size comes from git's header reader; a content stream must always be read to
        # its end, or git's object reader falls out of step.
        if blob.size > max_bytes:
            problems.append(
                Unreadable(rel, f"file is {blob.size:,} bytes; the limit is {max_bytes:,}")
            )
        else:
            found.append(CommittedFile(rel, blob.data_stream.read()))
    found.sort(key=lambda f: f.rel)
    return found, problems


def changed_between(root: Path, base: str, head: str, folder: str) -> list[str]:
    """Files under `folder` (relative to the workspace root) that differ between two commits,
    on either side: added, deleted, modified (renames count as a delete and an add)."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    top = _in_tree(prefix, folder)
    with _git_errors("git diff failed"):
        text = repo.git.diff("--name-only", "-z", "--no-renames", base, head, "--", top)
    paths = [p for p in text.split("\0") if p]
    return sorted(posixpath.relpath(p, prefix) if prefix else p for p in paths)


def read_file(root: Path, commit: str, rel: str, *, max_bytes: int) -> bytes | None:
    """One file (relative to the workspace root) at `commit`, or None when it is not there."""
    with _git_errors(f"cannot read {rel} at {short(commit)}"):
        return _read_file(root, commit, rel, max_bytes=max_bytes)


def _read_file(root: Path, commit: str, rel: str, *, max_bytes: int) -> bytes | None:
    repo = _repo(root)
    prefix = _prefix(repo, root)
    tree = repo.commit(commit).tree
    try:
        item = tree / (_in_tree(prefix, rel))
    except KeyError:
        return None
    if item.type != "blob":
        return None
    blob = _follow(tree, item)
    if isinstance(blob, str):
        raise ClonedError(f"{rel} at {short(commit)}: {blob}")
    if blob.size > max_bytes:
        raise ClonedError(f"{rel} at {short(commit)}: larger than {max_bytes:,} bytes")
    return bytes(blob.data_stream.read())


def _follow(tree: git.Tree, item: git.Blob) -> git.Blob | str:
    """The blob a committed symlink leads to inside the same commit, or why it leads nowhere."""
    for _ in range(LINK_HOPS):
        if item.mode != SYMLINK_MODE:
            return item
        target = item.data_stream.read().decode("utf-8", "replace")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(item.path), target))
        if target.startswith("/") or joined == ".." or joined.startswith("../"):
            return f"symlink points outside the repository ({target})"
        try:
            item = tree / joined
        except KeyError:
            return f"symlink points to nothing in this commit ({target})"
        if item.type != "blob":
            return f"symlink points to a folder ({target}); only file links are followed"
    return "too many levels of symlinks"


def history_touches(root: Path, paths: Iterable[str]) -> str | None:
    """The newest commit reachable from HEAD that added, changed or deleted any of `paths`
    (relative to the workspace root), or None: none did, there is no commit yet, or `root` is
    not in a git repository. One `git log -1`, cheap on any history."""
    repo = _repo_or_none(root)
    if repo is None or repo.working_tree_dir is None:
        return None
    try:
        repo.head.commit  # noqa: B018 - raises ValueError on an unborn branch
    except ValueError:
        return None
    prefix = _prefix(repo, root)
    specs = [_in_tree(prefix, p) for p in paths]
    with _git_errors("cannot read the git history"):
        found = repo.git.log("-1", "--format=%H", "HEAD", "--", *specs).strip()
    return found or None


ENTRY_FILE = "file"
ENTRY_LINK = "link"
ENTRY_SUBMODULE = "submodule"
EXECUTABLE_MODE = 0o100755


@dataclass(frozen=True)
class FolderEntry:
    """One entry of a committed folder, relative to that folder. `data` is the file's bytes
    when it is a regular file of at most the caller's `max_bytes`; links and submodules are
    never read."""

    rel: str
    kind: str
    executable: bool
    size: int
    data: bytes | None


def read_folder_entries(
    root: Path, commit: str, folder: str, *, max_entries: int, max_bytes: int
) -> list[FolderEntry] | None:
    """Every entry under `folder` (relative to the workspace root `root`) at `commit`, without
    following anything, at most `max_entries` of them; None when `folder` is not a folder in
    that commit. For pinning a connector folder by content (packages/tree.py)."""
    with _git_errors(f"cannot read {folder} at {short(commit)}"):
        repo = _repo(root)
        tree = repo.commit(commit).tree
        try:
            sub = tree / _in_tree(_prefix(repo, root), folder)
        except KeyError:
            return None
        if sub.type != "tree":
            return None
        found: list[FolderEntry] = []
        _collect(sub, "", found, max_entries=max_entries, max_bytes=max_bytes)
        return found


def _collect(
    tree: git.Tree, prefix: str, found: list[FolderEntry], *, max_entries: int, max_bytes: int
) -> None:
    for item in tree:
        if len(found) >= max_entries:
            return
        # The last part of the path, not `item.name`: a submodule's name needs .gitmodules.
        rel = prefix + posixpath.basename(str(item.path))
        if item.type == "tree":
            _collect(item, rel + "/", found, max_entries=max_entries, max_bytes=max_bytes)
        elif item.type == "submodule":
            found.append(FolderEntry(rel, ENTRY_SUBMODULE, False, 0, None))
        elif item.mode == SYMLINK_MODE:
            found.append(FolderEntry(rel, ENTRY_LINK, False, 0, None))
        else:
            size = item.size
            # A content stream must be read to its end, or git's object reader falls out of
            # step; an oversized one is left unread and refused by the caller on its size.
            data = bytes(item.data_stream.read()) if size <= max_bytes else None
            found.append(FolderEntry(rel, ENTRY_FILE, item.mode == EXECUTABLE_MODE, size, data))
