"""The audit commit: after an apply, commit Cloned's own files and never the user's other
staged or unstaged changes, refusing to rewrite committed audit history.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import GitError, GitFailed
from reconciler.gitrepo.repo import _git_errors, _in_tree, _prefix, _repo, _stderr

if TYPE_CHECKING:
    import git

IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "BISECT_LOG": "a bisect",
}


@dataclass(frozen=True)
class Author:
    """Who a commit is by."""

    name: str
    email: str


FALLBACK_AUTHOR = Author("Cloned", "cloned@localhost")


@dataclass(frozen=True)
class Guard:
    """Committed files a commit may only add to (paths relative to the workspace root)."""

    immutable: tuple[str, ...] = ()  # files, or folders of files, never changed or deleted
    append_only: tuple[str, ...] = ()  # files whose committed bytes must stay their beginning


def rewrites(root: Path, guard: Guard) -> list[str]:
    """What the working tree does to files `guard` protects, as committed at HEAD: one
    `deletes PATH` or `rewrites PATH` each (empty before the first commit)."""
    repo = _repo(root)
    try:
        parent = repo.head.commit
    except ValueError:
        return []
    prefix = _prefix(repo, root)
    protected = [*guard.immutable, *guard.append_only]
    specs = [_in_tree(prefix, p) for p in protected]
    with _git_errors("git diff failed"):
        text = repo.git.diff(
            "--no-renames",
            "-z",
            "--name-status",
            parent.hexsha,
            "--",
            *specs,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
    fields = [f for f in text.split("\0") if f]
    found = []
    for status, path in zip(fields[::2], fields[1::2], strict=True):
        rel = posixpath.relpath(path, prefix) if prefix else path
        if status == "D" or not os.path.isfile(os.path.join(str(root), rel)):
            found.append(f"deletes {rel}")
        elif rel in guard.append_only:
            old = (parent.tree / path).data_stream.read()
            if not (root / rel).read_bytes().startswith(old):
                found.append(f"rewrites {rel} (it may only grow)")
        else:
            found.append(f"rewrites {rel}")
    return found


def commit_paths(
    root: Path,
    paths: Iterable[str],
    message: str,
    author: Author | None,
    *,
    guard: Guard | None = None,
    exclude: Iterable[str] = (),
) -> str | None:
    """Commit exactly the current working-tree content of `paths` (relative to the workspace
    root; new, changed and deleted files) on top of HEAD, and nothing else; return the new
    commit, or None when they already match HEAD.

    The commit is built in a private index, so whatever the user has staged or changed
    elsewhere stays exactly as it was; no hooks run. The branch moves only if it still points
    where it did (compare-and-swap), so a concurrent commit is never overwritten. Refuses, with
    the reason, on a detached HEAD and in the middle of a merge, rebase or similar, and when
    it would delete or rewrite a file `guard` protects. `exclude` holds globs (relative to the
    workspace root) of files under `paths` that are never committed.
    """
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    if repo.head.is_detached:
        raise GitError("HEAD is detached, so there is no branch to commit to")
    git_dir = Path(repo.git_dir)
    for marker, what in IN_PROGRESS.items():
        if (git_dir / marker).exists():
            raise GitError(f"{what} is in progress in this repository")
    if guard is not None:
        refused = rewrites(root, guard)
        if refused:
            raise GitError(
                f"it {'; it '.join(refused)}, as committed at HEAD; committed audit history "
                "is never rewritten",
                hint="restore the files with `git checkout HEAD -- .cloned/audit`",
            )
    branch = repo.head.ref
    try:
        parent: str | None = repo.head.commit.hexsha
    except ValueError:
        parent = None
    specs = [_in_tree(prefix, p) for p in paths]
    try:
        with tempfile.TemporaryDirectory(prefix="cloned-index-") as scratch:
            env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
            repo.git.read_tree(parent or "--empty", env=env)
            tracked = set(repo.git.ls_files("-z", "--", *specs, env=env).split("\0")) - {""}
            present = [
                spec
                for spec in specs
                if os.path.lexists(os.path.join(repo.working_tree_dir or "", spec))
                or any(t == spec or t.startswith(spec + "/") for t in tracked)
            ]
            if not present:
                return None
            skip = [f":(exclude,glob){_in_tree(prefix, g)}" for g in exclude]
            repo.git.add("--all", "--force", "--", *present, *skip, env=env)
            tree = repo.git.write_tree(env=env)
        if parent is not None and tree == repo.commit(parent).tree.hexsha:
            return None
        who = author or _configured_author(repo)
        committer = _configured_author(repo, fallback=who)
        env = {
            "GIT_AUTHOR_NAME": who.name,
            "GIT_AUTHOR_EMAIL": who.email,
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", committer.name),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", committer.email),
        }
        parents = ["-p", parent] if parent is not None else []
        commit = repo.git.commit_tree(tree, *parents, "-m", message, env=env)
        repo.git.update_ref("-m", "cloned: audit commit", branch.path, commit, parent or "0" * 40)
    except git.GitCommandError as exc:
        raise GitFailed(f"git refused the audit commit: {_stderr(exc)}") from None
    # Keep the user's index in step for Cloned's paths only, so `git status` is clean there; if
    # that fails the commit still stands, and `git status` merely shows these paths as staged.
    with contextlib.suppress(git.GitCommandError):
        repo.git.reset("-q", commit, "--", *present)
    return str(commit)


def _configured_author(repo: git.Repo, fallback: Author = FALLBACK_AUTHOR) -> Author:
    """The identity git is configured with (environment first), else `fallback`."""
    reader = repo.config_reader()
    name = os.environ.get("GIT_AUTHOR_NAME") or reader.get_value("user", "name", "")
    email = os.environ.get("GIT_AUTHOR_EMAIL") or reader.get_value("user", "email", "")
    if name and email:
        return Author(str(name), str(email))
    return fallback
