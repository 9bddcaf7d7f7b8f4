"""`validate`: check the desired state under `.cloned/` and count it by kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode, Problem, ValidationFailed, WorkspaceNotFound, error_json


@dataclass(frozen=True)
class Validated:
    """The verdict on one workspace's desired state.

    Invalid input is a result, not an error: `problems` lists every finding, and `error` says
    what failed (also when no workspace was found, with `root` None)."""

    root: Path | None
    error: str | None = None
    hint: str | None = None
    problems: tuple[Problem, ...] = ()
    files: int = 0
    resources: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.valid else ExitCode.ERROR

    def to_json(self) -> dict[str, Any]:
        root = str(self.root) if self.root is not None else None
        if self.error is not None:
            failed = error_json(self.error, int(self.exit_code), self.problems)
            return {"valid": False, "root": root, **failed}
        return {
            "valid": True,
            "root": root,
            "files": self.files,
            "resources": self.resources,
            "kinds": dict(self.kinds),
            "problems": [],
        }


def validate(*, path: Path, use_cache: bool = True) -> Validated:
    """Validate every resource of the workspace containing `path`; nothing is written but the
    content cache (after a fully valid run)."""
    from reconciler.load.files import find_root
    from reconciler.load.workspace import load_desired_state

    try:
        root = find_root(path)
    except WorkspaceNotFound as exc:
        return Validated(None, exc.message, exc.hint)
    try:
        state = load_desired_state(root, use_cache=use_cache)
    except ValidationFailed as exc:
        return Validated(root, exc.message, exc.hint, tuple(exc.problems))
    return Validated(
        state.root,
        files=state.files,
        resources=len(state.resources),
        kinds=state.counts(),
    )
