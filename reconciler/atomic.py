"""Atomic file replacement: readers see the old file or the new one, never half of either.

Every file Cloned writes into a repository (lock file, plans, approval records, audit segments
and checkpoints, the validation cache) goes through `write_atomic`. A file inside a workspace's
`.cloned/` folder is written first to `.cloned/state/tmp/`, which git ignores, so a process
killed half-way leaves nothing that `git add` or the audit commit could pick up; the temporary's
name carries the writer's pid, so `remove_stale` can tell an abandoned one from a live write.
Files under `.cloned/state/` hold local state (the database, the cache, the audit key, the
loop's status) that no other user should read: they are created 0600 in folders created 0700,
here and nowhere else.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

STATE_DIR = Path(".cloned") / "state"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
STATE_IGNORE = "# Cloned's local state: never commit it.\n*\n"
CLONED_DIR = ".cloned"
TEMP_DIR = "tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")
_LEGACY_TEMP = re.compile(r"^\..+\.tmp$")
LEGACY_FOLDERS = ("", "audit", "audit/segments")
"""Where Cloned's in-place temporaries used to go (next to the lock file and the audit files)."""


def is_private(path: Path) -> bool:
    """Whether `path` is inside a `.cloned/state/` folder (local, owner-only state)."""
    parts = path.parts
    return any(parts[i : i + 2] == STATE_DIR.parts for i in range(len(parts) - 1))


def ensure_private_dir(folder: Path) -> None:
    """Create `folder` (inside `.cloned/state/`) and its missing parents 0700, and the state
    folder's `.gitignore`; folders made by an older Cloned are narrowed to 0700 too."""
    state = _state_root(folder)
    if state is None:
        folder.mkdir(parents=True, exist_ok=True)
        return
    state.parent.mkdir(parents=True, exist_ok=True)
    below = folder.relative_to(state).parts
    for depth in range(len(below) + 1):
        part = state.joinpath(*below[:depth])
        try:
            part.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if (part.stat().st_mode & 0o777) != PRIVATE_DIR:
                os.chmod(part, PRIVATE_DIR)
    ignore = state / ".gitignore"
    if not ignore.exists():
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w") as handle:
            handle.write(STATE_IGNORE)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist; narrow it to 0600 if it does."""
    ensure_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        if (path.stat().st_mode & 0o777) != PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)


def _state_root(folder: Path) -> Path | None:
    parts = folder.parts
    for i in range(len(parts) - 1):
        if parts[i : i + 2] == STATE_DIR.parts:
            return Path(*parts[: i + 2])
    return None


def state_folder(cloned: Path) -> Path:
    """`.cloned/state/` of the workspace whose `.cloned/` folder is `cloned`, created 0700 (with
    a `.gitignore` of `*`, so git never sees what is inside) when missing."""
    folder = cloned / STATE_DIR.name
    ensure_private_dir(folder)
    return folder


def temp_folder(path: Path) -> Path:
    """Where the temporary for `path` goes: the git-ignored `.cloned/state/tmp/` of the
    workspace holding it, or `path`'s own folder outside any `.cloned/` (a plan saved
    elsewhere)."""
    for parent in path.parents:
        if parent.name == CLONED_DIR:
            folder = state_folder(parent) / TEMP_DIR
            ensure_private_dir(folder)
            return folder
    return path.parent


def write_atomic(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Replace `path` with `data` in one rename; with `durable`, fsync the file and folder.

    The file is 0644, or 0600 (in a 0700 folder) under `.cloned/state/`."""
    payload = data.encode() if isinstance(data, str) else data
    private = is_private(path)
    if private:
        ensure_private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_via(temp_folder(path), path, payload, durable=durable, private=private)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # `.cloned/state/` on another file system: a rename cannot cross it.
        _write_via(path.parent, path, payload, durable=durable, private=private)
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _write_via(folder: Path, path: Path, payload: bytes, *, durable: bool, private: bool) -> None:
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp, PRIVATE_FILE if private else 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_stale(cloned: Path, *, alive: Callable[[int], bool]) -> list[Path]:
    """Delete temporaries that killed writers left in the workspace whose `.cloned/` folder is
    `cloned`: those in `state/tmp/` whose writer's pid is not `alive`, and every in-place one
    an older Cloned left next to the lock file and the audit files (only apply writes there,
    and the caller holds the workspace lock). Returns what it deleted."""
    removed: list[Path] = []
    for entry in _entries(cloned / STATE_DIR.name / TEMP_DIR):
        match = _TEMP_NAME.match(entry.name)
        if match is not None and not alive(int(match[1])):
            removed.append(entry)
    for folder in LEGACY_FOLDERS:
        removed.extend(e for e in _entries(cloned / folder) if _LEGACY_TEMP.match(e.name))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
