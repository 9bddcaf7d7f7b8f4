"""The working tree against HEAD, read without writing the index: which resource files and
approval records have uncommitted changes (engine/revision.py), and so were made by no signed
commit yet (engine/authorship.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path

from reconciler.gitrepo.repo import _git_errors, _in_tree, _prefix, _repo


def changed_paths(root: Path, paths: Iterable[str]) -> list[str]:
    """Paths under `paths` (relative to the workspace root) whose working-tree or staged
    content differs from HEAD, untracked files included; relative to the workspace root."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [_in_tree(prefix, p) for p in paths]
    # No optional locks: a plain `git status` may rewrite the index to refresh its stat
    # cache, and reading must write nothing.
    with _git_errors("git status failed"):
        text = repo.git.status(
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            *specs,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
    changed = []
    entries = iter(text.split("\0"))
    for entry in entries:
        if not entry:
            continue
        if entry[0] in "RC":
            next(entries, None)  # a rename's second field is its old path
        path = entry[3:]
        changed.append(posixpath.relpath(path, prefix) if prefix else path)
    return sorted(changed)


def tracked(root: Path, folder: str, *, limit: int = 5) -> list[str]:
    """Up to `limit` files under `folder` (relative to the workspace root) that git tracks
    (in the index), relative to the workspace root; none outside a git repository."""
    from reconciler.gitrepo.repo import _repo_or_none

    repo = _repo_or_none(root)
    if repo is None:
        return []
    prefix = _prefix(repo, root)
    with _git_errors("git ls-files failed"):
        text = repo.git.ls_files("-z", "--", _in_tree(prefix, folder))
    found = [entry for entry in text.split("\0") if entry][:limit]
    return [posixpath.relpath(path, prefix) if prefix else path for path in found]
