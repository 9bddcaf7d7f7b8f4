"""The bearer token of `cloned gateway --listen`: `$CLONED_HOME/gateway/token`, created on first
use (32 random bytes, URL-safe base64) in a folder only its owner can open, and replaced by
`cloned gateway token --rotate`. It is never logged; only `cloned gateway token` prints it.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

from reconciler.errors import ClonedError
from reconciler.home import gateway_token_path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TOKEN_BYTES = 32


def read_or_create() -> str:
    """The gateway's token, created first when there is none."""
    path = gateway_token_path()
    if not path.exists() and not path.is_symlink():
        return _write(path)
    return _read(path)


def rotate() -> str:
    """A new token in place of the old one (clients holding the old one get 401 from then on)."""
    return _write(gateway_token_path())


def _write(path: Path) -> str:
    _private_folder(path.parent)
    token = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.replace(temporary, path)
    return token


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ClonedError(
            f"cannot read the gateway token {path}: {exc.strerror}",
            hint="`cloned gateway token --rotate` writes a new one",
        ) from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise ClonedError(
                f"the gateway token {path} is not a private file (mode 0600)",
                hint="`cloned gateway token --rotate` writes a new one",
            )
        token = handle.read(1024).strip()
    if len(token) < 32:
        raise ClonedError(
            f"the gateway token {path} is too short",
            hint="`cloned gateway token --rotate` writes a new one",
        )
    return token


def _private_folder(folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        if folder.is_symlink() or not folder.is_dir():
            raise ClonedError(
                f"{folder} is not a folder: the gateway token cannot go there"
            ) from None
        if folder.stat().st_mode & 0o777 != PRIVATE_DIR:
            os.chmod(folder, PRIVATE_DIR)
