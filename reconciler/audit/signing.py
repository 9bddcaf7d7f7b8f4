"""The workspace's audit key: Ed25519, signs checkpoints of the chain head on every export.

The private key lives in `.cloned/state/audit-key` (OpenSSH format, mode 0600, git-ignored with
the rest of `state/`); it is made on the first export, which also pins its public key line in the
state database's `meta` table in the transaction that signs the first checkpoint, so a checkpoint
signed by any other key is refused. The key signs checkpoints and, in DSSE envelopes, the
provenance of pipeline runs (`reconciler.artifacts`, which pins it the same way when it signs
first); a DSSE signature covers a `DSSEv1 ...` pre-authentication encoding that no
checkpoint's canonical JSON can equal, so neither kind of signature can stand for the other.
`cryptography` is imported here and in `reconciler.keys` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler import keys
from reconciler.atomic import ensure_private_dir
from reconciler.errors import ClonedError
from reconciler.state import audit_rows, meta
from reconciler.state.audit_rows import Connection
from reconciler.state.db import StateDB

KEY_FILE = Path(".cloned") / "state" / "audit-key"
KEY_COMMENT = "cloned-audit"


class Signer(Protocol):
    """What `export` needs from a key: its public line and Ed25519 signatures."""

    @property
    def public_key(self) -> str:
        """The OpenSSH public key line (`ssh-ed25519 AAAA... comment`)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of `message`."""
        ...


@dataclass(frozen=True)
class FileSigner:
    """An Ed25519 key read from an OpenSSH private key file."""

    path: Path
    public_key: str
    _pem: bytes

    @classmethod
    def load(cls, path: Path) -> FileSigner:
        """Read the key at `path`; a file that is not an Ed25519 OpenSSH key is an error."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = path.read_bytes()
        try:
            key = serialization.load_ssh_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ClonedError(f"{path}: not an unencrypted OpenSSH private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ClonedError(f"{path}: the audit key must be an Ed25519 key")
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        return cls(path, f"{public.decode()} {KEY_COMMENT}", pem)

    def sign(self, message: bytes) -> bytes:
        """Sign `message` with the key."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = serialization.load_ssh_private_key(self._pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key.sign(message)


def create_key_file(path: Path) -> None:
    """Write a new Ed25519 private key to `path` (mode 0600); never overwrite one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def workspace_signer(db: StateDB, root: Path) -> FileSigner:
    """The workspace's audit key, made on first use; refused when it is not the pinned one."""
    path = root / KEY_FILE
    pinned = meta.get_meta(db.reader, audit_rows.PUBLIC_KEY)
    if not path.exists():
        if pinned is not None:
            raise ClonedError(
                f"{KEY_FILE}: the audit key is missing (the state database pins "
                f"{fingerprint(pinned)})",
                hint="restore the key file from a backup; without it no new checkpoint can be "
                "signed",
            )
        create_key_file(path)
    signer = FileSigner.load(path)
    if pinned is not None and not same_key(pinned, signer.public_key):
        raise ClonedError(
            f"{KEY_FILE}: this is not the audit key pinned in the state database "
            f"({fingerprint(signer.public_key)}, pinned {fingerprint(pinned)})",
            hint="restore the original key file",
        )
    return signer


def pin(connection: Connection, signer: Signer) -> None:
    """Pin `signer`'s key in `meta` when none is pinned yet (inside the caller's transaction, the
    one that first signs with it); a key that is not the pinned one is refused."""
    pinned = meta.get_meta(connection, audit_rows.PUBLIC_KEY)
    if pinned is None:
        meta.set_meta(connection, audit_rows.PUBLIC_KEY, signer.public_key)
    elif not same_key(pinned, signer.public_key):
        raise ClonedError(
            f"the audit key {fingerprint(signer.public_key)} is not the one this workspace "
            f"pinned ({fingerprint(pinned)}); nothing was signed",
            hint="restore .cloned/state/audit-key",
        )


def pinned_key(connection: Connection) -> str | None:
    """The public key line of the workspace's pinned audit key, or None before the first
    signature."""
    return meta.get_meta(connection, audit_rows.PUBLIC_KEY)


def fingerprint(public_line: str) -> str:
    """The SHA256 fingerprint of a public key line, as `ssh-keygen -l` shows it (never raises:
    it is used to describe keys in error messages)."""
    try:
        return keys.fingerprint(public_line)
    except ClonedError:
        return "(not a public key)"


# One implementation of key comparison and signature checks, shared with approvals.
same_key = keys.same_key
signature_valid = keys.verify
