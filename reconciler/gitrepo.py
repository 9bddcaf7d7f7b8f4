"""The git adapter: the only module that imports gitpython (STYLE practice 1)."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ClonedError


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None outside any repository."""
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.working_tree_dir is None:
        return None
    return Path(repo.working_tree_dir)


def init(path: Path) -> None:
    """Create a git repository at `path`."""
    import git

    try:
        git.Repo.init(path)
    except git.GitError as exc:
        raise ClonedError(f"could not create a git repository in {path}: {exc}") from exc
