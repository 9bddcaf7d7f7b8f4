"""Atomic file replacement: readers see the old file or the new one, never half of either.

Every file Cloned writes into a repository (lock file, plans, approval records, audit segments
and checkpoints, the validation cache) goes through `write_atomic`. Files under `.cloned/state/`
hold local state (the database, the cache, the audit key, the loop's status) that no other user
should read: they are created 0600 in folders created 0700, here and nowhere else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

STATE_DIR = Path(".cloned") / "state"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_IGNORE = "# Cloned's local state: never commit it.\n*\n"


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
            handle.write(_IGNORE)


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


def write_atomic(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Replace `path` with `data` in one rename; with `durable`, fsync the file and folder.

    The file is 0644, or 0600 (in a 0700 folder) under `.cloned/state/`."""
    payload = data.encode() if isinstance(data, str) else data
    private = is_private(path)
    if private:
        ensure_private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
