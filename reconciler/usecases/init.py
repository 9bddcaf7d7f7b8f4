"""`init`: start a workspace (a git repository if needed, a starter `.cloned/`, a key)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode
from reconciler.keys import KeyInfo
from reconciler.usecases.keys import key_json


@dataclass(frozen=True)
class Initialised:
    """What `init` created: the repository (if it had to), the files, the approver key."""

    root: Path
    created_repo: bool
    files: tuple[str, ...]  # repository-relative, `.cloned/workspace.yaml` first
    gitignore_updated: bool  # `.cloned/state/` was added to .gitignore
    key: KeyInfo
    key_created: bool  # False: the user's existing key was listed as the approver

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "created_repo": self.created_repo,
            "files": list(self.files),
            "gitignore_updated": self.gitignore_updated,
            "key": key_json(self.key),
            "key_created": self.key_created,
        }


def init(*, path: Path, name: str | None = None, user: str | None = None) -> Initialised:
    """Create the starter workspace in `path` for approver `user` (default: the local user);
    an existing `.cloned/` is refused with a `ClonedError`, never overwritten."""
    from reconciler.scaffold import init_workspace

    done = init_workspace(path, name=name, user=user)
    return Initialised(
        root=done.root,
        created_repo=done.created_repo,
        files=done.files,
        gitignore_updated=done.gitignore_updated,
        key=done.key,
        key_created=done.key_created,
    )
