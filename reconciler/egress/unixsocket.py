"""The egress proxy's listening socket: a Unix socket only its owner can reach.

`bind_unix` makes the folder private (0700) and the socket 0600, replaces a stale socket left
by a proxy that died (never another kind of file), and binds a path longer than a socket
address holds through the folder's `/proc/self/fd` entry."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import ClonedError


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at `path` (mode 0600) in a folder made private (0700).

    A path longer than a socket address holds (108 bytes) is bound through the folder's
    `/proc/self/fd` entry, so a deep checkout still works on Linux."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ClonedError(f"{path} exists and is not a socket; not replacing it")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short_path(path) as address:
            sock.bind(address)
        os.chmod(path, 0o600)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ClonedError(f"{path}: cannot listen for the egress proxy ({exc})") from None
    return sock


@contextlib.contextmanager
def _short_path(path: Path) -> Iterator[str]:
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
