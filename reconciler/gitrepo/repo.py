"""Repository basics, under every other module of the git adapter: find the work tree, open it,
spell a workspace-relative path as git does, turn a failed git command into a GitFailed, and
name revisions (HEAD, a resolved ref, the short form Cloned prints).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ClonedError, GitFailed, NotAGitRepository

if TYPE_CHECKING:
    import git


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None outside any repository."""
    repo = _repo_or_none(path)
    if repo is None or repo.working_tree_dir is None:
        return None
    return Path(repo.working_tree_dir)


def init(path: Path) -> None:
    """Create a git repository at `path`."""
    import git

    try:
        git.Repo.init(path)
    except git.GitError as exc:
        raise GitFailed(f"could not create a git repository in {path}: {exc}") from exc


def _repo_or_none(path: Path) -> git.Repo | None:
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    # Replace refs and grafts rewrite history on one machine only: what Cloned judges (who
    # made a change, what is committed) is the history as everyone has it.
    repo.git.update_environment(GIT_NO_REPLACE_OBJECTS="1", GIT_GRAFT_FILE=os.devnull)
    return repo


def _repo(root: Path) -> git.Repo:
    repo = _repo_or_none(root)
    if repo is None or repo.working_tree_dir is None:
        raise NotAGitRepository(f"{root} is not inside a git work tree")
    return repo


def _prefix(repo: git.Repo, root: Path) -> str:
    """`root` relative to the work tree, in git's spelling ("" at the top)."""
    assert repo.working_tree_dir is not None
    rel = os.path.relpath(os.path.realpath(root), os.path.realpath(repo.working_tree_dir))
    return "" if rel == "." else Path(rel).as_posix()


def _in_tree(prefix: str, rel: str) -> str:
    """A workspace-relative path as git names it from the work tree's top (`prefix` from
    `_prefix`)."""
    return posixpath.join(prefix, rel) if prefix else rel


@contextlib.contextmanager
def _git_errors(what: str) -> Iterator[None]:
    """Turn a failed git command into a GitFailed that says what Cloned was doing."""
    import git

    try:
        yield
    except git.GitCommandError as exc:
        raise GitFailed(f"{what}: {_stderr(exc)}") from None
    except (git.BadObject, git.BadName, ValueError) as exc:  # a missing or damaged object
        raise GitFailed(f"{what}: {exc}") from None


def _stderr(exc: git.GitCommandError) -> str:
    """git's own message from a failed command, without gitpython's decoration."""
    return str(exc.stderr or exc).strip().removeprefix("stderr:").strip(" '\n")


# --- Revisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """Where HEAD is: its commit (None on an unborn branch) and branch (None when detached)."""

    commit: str | None
    branch: str | None


def head(root: Path) -> Head:
    """HEAD of the repository holding `root`."""
    repo = _repo(root)
    branch = None if repo.head.is_detached else repo.head.ref.name
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:
        commit = None
    return Head(commit, branch)


def resolve(root: Path, ref: str, *, flag: str = "--base") -> str:
    """The full id of the commit `ref` names; a clear error naming `flag` when it names none."""
    import git

    repo = _repo(root)
    if not ref or ref.startswith("-"):
        raise ClonedError(f"{flag}: {ref!r} is not a revision")
    try:
        return str(repo.commit(ref).hexsha)
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
        raise ClonedError(
            f"{flag}: {ref!r} names no commit in this repository",
            hint="fetch it first (CI checkouts are often shallow: use fetch-depth: 0)",
        ) from None


def short(commit: str) -> str:
    """The 12-digit abbreviation Cloned prints for a commit."""
    return commit[:12]
