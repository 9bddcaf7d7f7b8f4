"""A registry folder as TUF metadata on disk: read the current state, change it, sign and write.

The publishing commands (`publishing.py`) load a `Repository`, change roles through it, and
`commit()` it: each changed role gets the next version, a fresh expiry and its signatures; a new
snapshot lists every targets role with its version, length and sha256, and a new timestamp
points at that snapshot. Files are written in the order a reader needs them consistent: targets
files, role metadata, snapshot, and `timestamp.json` last, which is the commit point (a crash
before it leaves the registry serving the previous state). Layout: specs/registry-format.md."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from reconciler.atomic import write_atomic
from reconciler.errors import ClonedError

TOP_ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
REVOKED_FIELD = "x-cloned-revoked"
"""In top-level targets: {role: [key ids]} of publishers revoked or whose keys were rotated."""


@dataclass(frozen=True)
class Expiries:
    """How long each role's metadata stays valid after it is signed (real-repository defaults)."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)

    def of(self, role: str) -> timedelta:
        """The validity of `role` (a delegated publisher role lasts as long as targets)."""
        if role in (Root.type, Snapshot.type, Timestamp.type):
            return getattr(self, role)  # type: ignore[no-any-return]
        return self.targets


@dataclass
class Repository:
    """The newest metadata of every role of the registry in `folder`."""

    folder: Path
    root: Metadata[Root]
    targets: Metadata[Targets]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]
    roles: dict[str, Metadata[Targets]] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    @property
    def metadata_dir(self) -> Path:
        """`DIR/metadata/`."""
        return self.folder / "metadata"

    def role(self, name: str) -> Metadata[Targets]:
        """The targets metadata of `name` ("targets" or a publisher)."""
        return self.targets if name == Targets.type else self.roles[name]

    def write(self, md: Metadata[Any], name: str) -> bytes:
        """Write `md` as `name` under metadata/ and return its bytes."""
        data = md.to_bytes(JSONSerializer(compact=False))
        write_atomic(self.metadata_dir / name, data)
        self.written.append(f"metadata/{name}")
        return data

    def commit(
        self,
        changed: Sequence[str],
        signers: dict[str, list[Signer]],
        *,
        expiries: Expiries,
        now: datetime,
    ) -> None:
        """Re-sign and write the targets roles in `changed`, then a new snapshot and timestamp;
        `signers` holds the keys of each role re-signed (the online key under "snapshot")."""
        for name in changed:
            md = self.role(name)
            _bump(md, expiries.of(name), now)
            _sign(md, signers[name])
            data = self.write(md, f"{md.signed.version}.{name}.json")
            self.snapshot.signed.meta[f"{name}.json"] = _meta(md.signed.version, data)
        self.resign_snapshot(signers[Snapshot.type], expiries=expiries, now=now)

    def resign_snapshot(self, online: list[Signer], *, expiries: Expiries, now: datetime) -> None:
        """A new snapshot of the current roles and a new timestamp pointing at it."""
        _bump(self.snapshot, expiries.snapshot, now)
        _sign(self.snapshot, online)
        data = self.write(self.snapshot, f"{self.snapshot.signed.version}.snapshot.json")
        self.timestamp.signed.snapshot_meta = _meta(self.snapshot.signed.version, data)
        self.resign_timestamp(online, expiries=expiries, now=now)

    def resign_timestamp(self, online: list[Signer], *, expiries: Expiries, now: datetime) -> None:
        """A new timestamp (the next version, a fresh expiry) of the current snapshot."""
        _bump(self.timestamp, expiries.timestamp, now)
        _sign(self.timestamp, online)
        self.write(self.timestamp, "timestamp.json")

    def versions(self) -> dict[str, int]:
        """The version of every role's newest metadata."""
        found = {
            Root.type: self.root.signed.version,
            Timestamp.type: self.timestamp.signed.version,
            Snapshot.type: self.snapshot.signed.version,
            Targets.type: self.targets.signed.version,
        }
        found.update({name: md.signed.version for name, md in sorted(self.roles.items())})
        return found


def new_metadata(signed: Any, expires: timedelta, now: datetime) -> Metadata[Any]:
    """Version 1 of a role's metadata, unsigned, expiring `expires` after `now`."""
    signed.expires = now + expires
    return Metadata(signed)


def _bump(md: Metadata[Any], expires: timedelta, now: datetime) -> None:
    md.signed.version += 1
    md.signed.expires = now + expires


def _sign(md: Metadata[Any], signers: list[Signer]) -> None:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)


def _meta(version: int, data: bytes) -> MetaFile:
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def root_pin(folder: Path) -> str:
    """The bootstrap pin of the registry in `folder`: `sha256:` of its `1.root.json` bytes."""
    path = folder / "metadata" / "1.root.json"
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ClonedError(f"{path}: not a registry ({exc.strerror})") from None


def load(folder: Path) -> Repository:
    """The registry in `folder` as its newest metadata; a folder that is not one is an error."""
    meta = folder / "metadata"
    root = _read(meta, f"{_newest_root(meta)}.root.json", Root)
    timestamp = _read(meta, "timestamp.json", Timestamp)
    snapshot = _read(meta, f"{timestamp.signed.snapshot_meta.version}.snapshot.json", Snapshot)
    roles: dict[str, Metadata[Targets]] = {}
    for filename, info in snapshot.signed.meta.items():
        name = filename.removesuffix(".json")
        roles[name] = _read(meta, f"{info.version}.{name}.json", Targets)
    targets = roles.pop(Targets.type)
    return Repository(folder, root, targets, snapshot, timestamp, roles)


def _newest_root(meta: Path) -> int:
    versions = [
        int(path.name.split(".", 1)[0])
        for path in meta.glob("*.root.json")
        if path.name.split(".", 1)[0].isdigit()
    ]
    if not versions:
        raise ClonedError(f"{meta}: no N.root.json here; is this a registry (`registry init`)?")
    return max(versions)


def _read(meta: Path, name: str, kind: type[Any]) -> Metadata[Any]:
    path = meta / name
    try:
        md: Metadata[Any] = Metadata.from_file(str(path))
    except OSError as exc:
        raise ClonedError(f"{path}: cannot read ({exc.strerror})") from None
    except (DeserializationError, RepositoryError, ValueError) as exc:
        raise ClonedError(f"{path}: not valid TUF metadata ({exc})") from None
    if not isinstance(md.signed, kind):
        raise ClonedError(f"{path}: holds {md.signed.type} metadata, not {kind.type}")
    return md
