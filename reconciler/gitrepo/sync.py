"""Following a branch, for the reconcile loop: the git directory to watch, bringing the
checked-out branch up to its remote (replaying Cloned's own audit commits), and pushing them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from reconciler.errors import ClonedError, GitFailed
from reconciler.gitrepo.repo import _in_tree, _prefix, _repo, _stderr, head, short


def git_dir(root: Path) -> Path:
    """The repository's git directory (where HEAD and refs live), for watching."""
    return Path(_repo(root).git_dir)


def fast_forward(root: Path, remote: str, branch: str, *, own: Iterable[str] = ()) -> str | None:
    """Fetch `branch` from `remote` and bring the checked-out branch up to it; the new HEAD, or
    None when nothing new arrived.

    Fast-forwards when the branch is behind. When it is also ahead, and every commit it has
    that the remote lacks touches only `own` paths (relative to the workspace root: Cloned's
    audit commits), those commits are replayed on top of the remote's; any other divergence
    is refused. `merge --ff-only` and the replay refuse to overwrite uncommitted changes to
    the files they touch."""
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    if repo.head.is_detached or repo.head.ref.name != branch:
        raise ClonedError(f"--pull: {branch!r} is not the checked-out branch")
    before = head(root).commit
    try:
        repo.git.fetch("--quiet", remote, f"refs/heads/{branch}")
        fetched = repo.commit("FETCH_HEAD").hexsha
        if before is not None and repo.is_ancestor(repo.commit(fetched), repo.commit(before)):
            return None  # nothing new: up to date, or only ahead
        if before is None or repo.is_ancestor(repo.commit(before), repo.commit(fetched)):
            repo.git.merge("--ff-only", "--quiet", fetched)
            return str(fetched)
        specs = [_in_tree(prefix, p) for p in own]
        ahead = repo.git.rev_list(f"{fetched}..{before}").split()
        for commit in ahead:
            touched = repo.git.diff_tree("--no-commit-id", "--name-only", "-r", commit).split()
            if not specs or any(
                not any(t == s or t.startswith(s + "/") for s in specs) for t in touched
            ):
                raise ClonedError(
                    f"could not fast-forward {branch} from {remote}: the branches diverged "
                    f"(commit {short(commit)} is only here)"
                )
        try:
            repo.git.rebase("--quiet", fetched)
        except git.GitCommandError:
            with contextlib.suppress(git.GitCommandError):
                repo.git.rebase("--abort")
            raise
    except git.GitCommandError as exc:
        raise GitFailed(f"could not bring {branch} up to {remote}: {_stderr(exc)}") from None
    return head(root).commit


def push(root: Path, remote: str, branch: str) -> None:
    """Push the checked-out branch to `remote` (fast-forward only)."""
    import git

    repo = _repo(root)
    try:
        repo.git.push("--quiet", remote, f"HEAD:refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise GitFailed(f"could not push {branch} to {remote}: {_stderr(exc)}") from None
