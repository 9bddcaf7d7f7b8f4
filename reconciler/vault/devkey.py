"""The dev vault's per-user files under `$CLONED_HOME/vault/dev/` (specs/vault.md, "Dev provider").

Two files per workspace name, never in a repository: `NAME.key`, the 32 random bytes every
value of that workspace's dev vault is sealed with (0600, created on the first `set`; refused,
as ssh refuses a private key, when group or others may read it), and `NAME.seen.json`, the
highest generation this user has written to each dev vault file of that workspace, so a file
put back to an older copy of itself is refused (rollback). The folder is 0700.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from reconciler.vault.types import VaultRefused

KEY_BYTES = 32
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def key_folder(home: Path) -> Path:
    """Where the dev vault keys live: `$CLONED_HOME/vault/dev/`."""
    return home / "vault" / "dev"


def key_path(home: Path, workspace: str) -> Path:
    """The key file of workspace `workspace`."""
    return key_folder(home) / f"{_safe(workspace)}.key"


def read_key(path: Path) -> bytes | None:
    """The key in `path`, None when there is none; `VaultRefused` when it is not a private
    file of exactly 32 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VaultRefused(f"cannot read the dev vault key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise VaultRefused(f"the dev vault key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise VaultRefused(
                f"the dev vault key {path} is readable by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); it must be private",
                hint=f"run `chmod 600 {path}`",
            )
        key = handle.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise VaultRefused(f"the dev vault key {path} is not {KEY_BYTES} bytes long")
    return key


def create_key(path: Path) -> bytes:
    """A new random key written to `path` (0600, in a 0700 folder); `path` must not exist."""
    private_folder(path.parent)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        raise VaultRefused(f"the dev vault key {path} appeared while it was made") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def seen_generation(home: Path, workspace: str, file: Path) -> int:
    """The highest generation this user wrote to dev vault file `file` (0: none recorded)."""
    record = _read_seen(_seen_path(home, workspace))
    value = record.get(str(file.resolve()), 0)
    return value if isinstance(value, int) else 0


def record_generation(home: Path, workspace: str, file: Path, generation: int) -> None:
    """Remember that `file` is at `generation` now (replaced atomically, 0600)."""
    path = _seen_path(home, workspace)
    record = _read_seen(path)
    record[str(file.resolve())] = generation
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        json.dump({"files": record}, handle, sort_keys=True, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def private_folder(folder: Path) -> None:
    """`folder` (`$CLONED_HOME/vault/dev`) and its parent created 0700, or narrowed to it."""
    folder.parent.parent.mkdir(parents=True, exist_ok=True)
    for part in (folder.parent, folder):
        try:
            part.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if part.is_symlink() or not part.is_dir():
                raise VaultRefused(
                    f"{part} is not a folder: the dev vault key cannot go there"
                ) from None
            if stat.S_IMODE(part.stat().st_mode) != PRIVATE_DIR:
                os.chmod(part, PRIVATE_DIR)


def _seen_path(home: Path, workspace: str) -> Path:
    return key_folder(home) / f"{_safe(workspace)}.seen.json"


def _read_seen(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise VaultRefused(
            f"cannot read {path}: {exc}",
            hint="it records each dev vault file's generation; remove it to start again",
        ) from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise VaultRefused(f"{path} is not a dev vault generation record")
    return {k: v for k, v in files.items() if isinstance(v, int)}


def _safe(workspace: str) -> str:
    """`workspace` as a file name (a Workspace name is a DNS label; anything else is refused)."""
    if not workspace or "/" in workspace or workspace.startswith(".") or "\x00" in workspace:
        raise VaultRefused(f"{workspace!r} cannot name a dev vault key")
    return workspace
