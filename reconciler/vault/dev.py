"""The dev vault: one AES-256-GCM encrypted file per repository, for development only
(specs/vault.md, "Dev provider").

The file is `.cloned/state/vault/dev.json` (git-ignored, 0600, replaced atomically); its key is
32 random bytes in `$CLONED_HOME/vault/dev/WORKSPACE.key` (`devkey`), never in the repository.
Two keys are derived from it with HKDF-SHA256: one seals each value (AES-256-GCM, a fresh
96-bit nonce per version, the associated data binding it to the file format, the workspace,
the secret's name and the version), the other authenticates the whole file (HMAC-SHA256 over
its canonical JSON without the `mac` field), so an entry removed, put back to an older
version, swapped with another's or copied from another file is refused, as is a file from
another workspace or sealed with another key. Each write raises the file's `generation`, and
`$CLONED_HOME` remembers the highest one written, so a whole file put back to an older copy is
refused too. Whatever is refused, nothing is written.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reconciler import atomic
from reconciler.canonical import canonical_json, parse_json
from reconciler.clock import SYSTEM, Clock, stamp
from reconciler.vault import devkey
from reconciler.vault.types import (
    ProviderName,
    SecretInfo,
    SecretMissing,
    SecretValue,
    VaultRefused,
    VaultStatus,
    check_name,
    check_value,
    revealed,
)

FORMAT = "cloned-dev-vault/v1"
FILE = atomic.STATE_DIR / "vault" / "dev.json"
"""The dev vault's file, relative to the repository root."""
NONCE_BYTES = 12
MAX_VERSIONS = 25
"""Versions kept per secret; older ones are dropped on `set` (the file stays small)."""


@dataclass(frozen=True)
class Version:
    """One sealed version of a secret as the file holds it."""

    version: str
    updated: str
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "version": self.version,
            "updated": self.updated,
            "nonce": _b64(self.nonce),
            "ciphertext": _b64(self.ciphertext),
        }


@dataclass(frozen=True)
class Contents:
    """The opened file: each secret's versions, oldest first, and the file's generation."""

    generation: int
    secrets: dict[str, tuple[Version, ...]]


class _Keys:
    """The two keys derived from a workspace's dev vault key."""

    def __init__(self, key: bytes) -> None:
        self.seal = AESGCM(_derive(key, b"cloned dev vault: values"))
        self.mac = _derive(key, b"cloned dev vault: file")
        self.check = hmac.new(self.mac, b"key check", sha256).hexdigest()[:16]


class DevVault:
    """A VaultProvider on the encrypted file of the repository at `root`."""

    def __init__(self, root: Path, workspace: str, *, home: Path, clock: Clock = SYSTEM) -> None:
        self.file = root / FILE
        self.workspace = workspace
        self.home = home
        self.key_file = devkey.key_path(home, workspace)
        self._clock = clock

    @property
    def provider(self) -> ProviderName:
        return "dev"

    def status(self) -> VaultStatus:
        try:
            contents = self._open()
            self._keys()  # a key others may read is refused even before the first secret
        except VaultRefused as exc:
            return self._status(False, exc.message)
        if not self.file.exists():
            return self._status(True, "no secret set yet; `cloned vault set NAME` starts it", 0)
        return self._status(True, f"key {self.key_file}", len(contents.secrets))

    def names(self) -> list[SecretInfo]:
        contents = self._open()
        return [_info(name, versions) for name, versions in sorted(contents.secrets.items())]

    def exists(self, name: str) -> SecretInfo | None:
        versions = self._open().secrets.get(name)
        return _info(name, versions) if versions else None

    def get(self, name: str, version: str | None = None) -> SecretValue:
        versions = self._open().secrets.get(name)
        if not versions:
            raise SecretMissing(name, f"the dev vault has no secret {name!r} ({self.file})")
        chosen = versions[-1] if version is None else _find(versions, version)
        if chosen is None:
            raise SecretMissing(name, f"the dev vault has no version {version} of {name!r}")
        keys = self._keys()
        assert keys is not None  # the file opened, so its key is there
        try:
            plain = keys.seal.decrypt(chosen.nonce, chosen.ciphertext, self._bound(name, chosen))
        except InvalidTag:
            why = f"secret {name!r} version {chosen.version} does not decrypt"
            raise self._tampered(why) from None
        return revealed(name, chosen.version, plain.decode())

    def set(self, name: str, value: str) -> SecretInfo:
        check_name(name)
        check_value(name, value)
        with self._locked():
            contents = self._open()
            keys = self._keys() or self._new_key()
            entry = self._sealed(keys, name, value)
            kept = (*contents.secrets.get(name, ()), entry)[-MAX_VERSIONS:]
            self._write(keys, contents, {**contents.secrets, name: kept})
        return SecretInfo(name, entry.version, entry.updated)

    def delete(self, name: str) -> None:
        check_name(name)
        with self._locked():
            contents = self._open()
            if name not in contents.secrets:
                raise SecretMissing(name, f"the dev vault has no secret {name!r} ({self.file})")
            keys = self._keys()
            assert keys is not None
            remaining = {k: v for k, v in contents.secrets.items() if k != name}
            self._write(keys, contents, remaining)

    # --- the file ------------------------------------------------------------------------

    def _open(self) -> Contents:
        """The file's contents, verified; an empty vault when there is no file."""
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            seen = devkey.seen_generation(self.home, self.workspace, self.file)
            return Contents(seen, {})
        except OSError as exc:
            raise VaultRefused(f"cannot read the dev vault {self.file}: {exc.strerror}") from None
        try:
            document = parse_json(raw)
        except ValueError as exc:
            raise self._tampered(f"it is not JSON ({exc})") from None
        return self._verified(document)

    def _verified(self, document: Any) -> Contents:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise self._tampered(f"it is not a {FORMAT} file")
        if document.get("workspace") != self.workspace:
            raise VaultRefused(
                f"the dev vault {self.file} belongs to workspace "
                f"{document.get('workspace')!r}, not {self.workspace!r}; it cannot be used here",
                hint="a dev vault cannot move between workspaces: set the secrets again",
            )
        keys = self._keys()
        if keys is None:
            raise VaultRefused(
                f"the dev vault {self.file} cannot be opened: its key {self.key_file} is missing",
                hint="restore the key file, or remove the vault file and set the secrets again",
            )
        if document.get("key") != keys.check:
            raise VaultRefused(
                f"the dev vault {self.file} was sealed with another key than {self.key_file}",
                hint="restore the key it was made with, or remove the file and set the "
                "secrets again",
            )
        unsigned = {k: v for k, v in document.items() if k != "mac"}
        expected = hmac.new(keys.mac, canonical_json(unsigned), sha256).hexdigest()
        if not hmac.compare_digest(str(document.get("mac", "")), expected):
            raise self._tampered("its MAC does not match (an entry was changed, added or removed)")
        contents = self._parsed(document)
        seen = devkey.seen_generation(self.home, self.workspace, self.file)
        if contents.generation < seen:
            raise self._tampered(
                f"it is generation {contents.generation}, older than generation {seen} "
                "written here before (an older copy was put back)"
            )
        return contents

    def _parsed(self, document: dict[str, Any]) -> Contents:
        generation = document.get("generation")
        entries = document.get("secrets")
        if not isinstance(generation, int) or not isinstance(entries, dict):
            raise self._tampered("its generation or secrets are malformed")
        try:
            found = {
                name: tuple(_version(item) for item in items) for name, items in entries.items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise self._tampered(f"an entry is malformed ({exc})") from None
        return Contents(generation, found)

    def _write(
        self, keys: _Keys, before: Contents, secrets_now: dict[str, tuple[Version, ...]]
    ) -> None:
        generation = before.generation + 1
        document: dict[str, Any] = {
            "format": FORMAT,
            "workspace": self.workspace,
            "key": keys.check,
            "generation": generation,
            "secrets": {
                name: [v.to_json() for v in versions]
                for name, versions in sorted(secrets_now.items())
            },
        }
        document["mac"] = hmac.new(keys.mac, canonical_json(document), sha256).hexdigest()
        atomic.write_atomic(self.file, canonical_json(document) + b"\n")
        devkey.record_generation(self.home, self.workspace, self.file, generation)

    def _sealed(self, keys: _Keys, name: str, value: str) -> Version:
        version = secrets.token_hex(16)
        updated = stamp(self._clock.now())
        nonce = secrets.token_bytes(NONCE_BYTES)
        draft = Version(version, updated, nonce, b"")
        sealed = keys.seal.encrypt(nonce, value.encode(), self._bound(name, draft))
        return Version(version, updated, nonce, sealed)

    def _bound(self, name: str, version: Version) -> bytes:
        """The associated data of one value: it opens only as this version of this name here."""
        return canonical_json([FORMAT, self.workspace, name, version.version, version.updated])

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: read, change and replace the file under an exclusive lock."""
        lock = self.file.with_name("dev.lock")
        atomic.create_private_file(lock)
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- the key -------------------------------------------------------------------------

    def _keys(self) -> _Keys | None:
        key = devkey.read_key(self.key_file)
        return _Keys(key) if key is not None else None

    def _new_key(self) -> _Keys:
        return _Keys(devkey.create_key(self.key_file))

    def _status(self, reachable: bool, detail: str, count: int | None = None) -> VaultStatus:
        return VaultStatus("dev", str(self.file), reachable, detail, dev_only=True, secrets=count)

    def _tampered(self, why: str) -> VaultRefused:
        return VaultRefused(
            f"the dev vault {self.file} was changed outside Cloned and is refused: {why}",
            hint="restore the file from a backup, or remove it and set the secrets again",
        )


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


def _info(name: str, versions: tuple[Version, ...]) -> SecretInfo:
    latest = versions[-1]
    return SecretInfo(name, latest.version, latest.updated)


def _find(versions: tuple[Version, ...], version: str) -> Version | None:
    return next((v for v in versions if v.version == version), None)


def _version(item: Any) -> Version:
    if not isinstance(item, dict):
        raise TypeError("a version is not an object")
    return Version(
        str(item["version"]),
        str(item["updated"]),
        base64.b64decode(item["nonce"], validate=True),
        base64.b64decode(item["ciphertext"], validate=True),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
