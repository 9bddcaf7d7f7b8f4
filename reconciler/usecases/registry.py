"""`cloned registry init|delegate|publish|revoke|timestamp|rotate-root|root-pin|serve`: keeping a
signed connector registry (specs/registry-format.md) with the keys approvers use.

Each use case loads the keys its flags name, calls the publisher (`packages.registry`) with the
clock's time, and returns what was written, the metadata versions after, and the root pin a
Registry resource needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.clock import now
from reconciler.errors import ExitCode, UsageError
from reconciler.usecases.durations import parse_duration

if TYPE_CHECKING:
    from reconciler.packages.registry.publishing import Changed
    from reconciler.packages.registry.repository import Expiries
    from reconciler.packages.registry.serve import RegistryServer
    from reconciler.packages.registry.signing import KeySigner

__all__ = [
    "Durations",
    "Pin",
    "Published",
    "Serving",
    "delegate",
    "init",
    "open_server",
    "publish",
    "revoke",
    "root_pin",
    "rotate_root",
    "timestamp",
]


@dataclass(frozen=True)
class Durations:
    """The `--*-expires` flags as given (`365d`, `12h`, ...); None keeps the default."""

    root: str | None = None
    targets: str | None = None
    snapshot: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Published:
    """What a registry command changed: files written, versions after, and the root pin."""

    folder: Path
    action: str
    written: tuple[str, ...]
    versions: dict[str, int]
    pin: str
    target: str | None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": str(self.folder),
            "action": self.action,
            "target": self.target,
            "written": list(self.written),
            "versions": self.versions,
            "root_pin": self.pin,
        }


@dataclass(frozen=True)
class Pin:
    """The bootstrap pin of a registry: the `root` of a Registry resource."""

    folder: Path
    pin: str

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"registry": str(self.folder), "root_pin": self.pin}


@dataclass(frozen=True)
class Serving:
    """A registry server ready to run; `url` is the Registry `url` that reaches it."""

    folder: Path
    url: str
    server: RegistryServer

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"registry": str(self.folder), "url": self.url}

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C), then close the socket."""
        try:
            self.server.serve_forever()
        finally:
            self.server.shutdown()


def init(
    *,
    folder: Path,
    root_keys: list[str],
    threshold: int,
    targets_key: str,
    online_key: str,
    expires: Durations,
) -> Published:
    """Create a registry in `folder` (root, targets, snapshot and timestamp metadata)."""
    from reconciler.packages.registry import publishing

    if not root_keys:
        raise UsageError("--root-key: give at least one")
    changed = publishing.init(
        folder,
        root_keys=[_signer(key, "--root-key") for key in root_keys],
        threshold=threshold,
        targets_key=_signer(targets_key, "--targets-key"),
        online_key=_signer(online_key, "--online-key"),
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def delegate(
    *,
    folder: Path,
    name: str,
    publisher_keys: list[str],
    threshold: int,
    targets_key: str,
    online_key: str,
    expires: Durations,
) -> Published:
    """Add publisher `name`, delegated `name/*`, with its keys and threshold."""
    from reconciler.packages.registry import publishing

    if not publisher_keys:
        raise UsageError("--publisher-key: give at least one")
    changed = publishing.delegate(
        folder,
        name=name,
        publisher_keys=[_signer(key, "--publisher-key") for key in publisher_keys],
        threshold=threshold,
        targets_key=_signer(targets_key, "--targets-key"),
        online_key=_signer(online_key, "--online-key"),
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def publish(
    *, folder: Path, file: Path, keys: list[str], online_key: str, expires: Durations
) -> Published:
    """Publish the connector archive `file` under its manifest's publisher role."""
    from reconciler.packages.archive import read_archive_manifest
    from reconciler.packages.declared import declared_block
    from reconciler.packages.registry import publishing

    if not keys:
        raise UsageError("--key: give the publisher's key")
    if not file.is_file():
        raise UsageError(f"{file}: no such archive (make one with `cloned connectors pack`)")
    manifest = read_archive_manifest(file)
    changed = publishing.publish(
        folder,
        file,
        target=f"{manifest.publisher}/{manifest.name}-{manifest.version}.tar.gz",
        declared=declared_block(manifest),
        publisher_keys=[_signer(key, "--key") for key in keys],
        online_key=_signer(online_key, "--online-key"),
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def revoke(
    *,
    folder: Path,
    name: str,
    new_keys: list[str],
    threshold: int | None,
    targets_key: str,
    online_key: str,
    expires: Durations,
) -> Published:
    """Remove publisher `name`, or with `new_keys` rotate its keys."""
    from reconciler.packages.registry import publishing

    if threshold is not None and not new_keys:
        raise UsageError("--threshold: only with --new-key (a rotation)")
    changed = publishing.revoke(
        folder,
        name=name,
        new_keys=[_signer(key, "--new-key") for key in new_keys],
        threshold=threshold,
        targets_key=_signer(targets_key, "--targets-key"),
        online_key=_signer(online_key, "--online-key"),
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def timestamp(*, folder: Path, online_key: str, expires: Durations) -> Published:
    """Re-sign a fresh timestamp of the registry's current snapshot."""
    from reconciler.packages.registry import publishing

    changed = publishing.timestamp(
        folder,
        online_key=_signer(online_key, "--online-key"),
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def rotate_root(
    *,
    folder: Path,
    root_keys: list[str],
    new_root_keys: list[str],
    threshold: int,
    expires: Durations,
) -> Published:
    """Write the next root with `new_root_keys`, signed by the current and the new root keys."""
    from reconciler.packages.registry import publishing

    if not root_keys or not new_root_keys:
        raise UsageError("--root-key and --new-root-key: give at least one of each")
    changed = publishing.rotate_root(
        folder,
        current_keys=[_signer(key, "--root-key") for key in root_keys],
        new_keys=[_signer(key, "--new-root-key") for key in new_root_keys],
        threshold=threshold,
        expiries=_expiries(expires),
        now=now(),
    )
    return _published(changed)


def root_pin(*, folder: Path) -> Pin:
    """The `sha256:` pin of the registry in `folder`, for a Registry resource's `root`."""
    from reconciler.packages.registry.repository import root_pin as pin

    return Pin(folder, pin(folder))


def open_server(*, folder: Path, host: str, port: int) -> Serving:
    """A loopback HTTP server of the registry in `folder`, bound and ready to `run()`."""
    from reconciler.packages.registry.serve import RegistryServer

    server = RegistryServer(folder, host, port)
    return Serving(folder, server.url, server)


def _expiries(given: Durations) -> Expiries:
    from reconciler.packages.registry.repository import Expiries

    defaults = Expiries()
    return Expiries(
        root=_or(given.root, "--root-expires", defaults.root),
        targets=_or(given.targets, "--targets-expires", defaults.targets),
        snapshot=_or(given.snapshot, "--snapshot-expires", defaults.snapshot),
        timestamp=_or(given.timestamp, "--timestamp-expires", defaults.timestamp),
    )


def _or(text: str | None, flag: str, default: timedelta) -> timedelta:
    return default if text is None else parse_duration(text, flag)


def _signer(spec: str, flag: str) -> KeySigner:
    from reconciler.packages.registry.signing import load_signer

    return load_signer(spec, option=flag)


def _published(changed: Changed) -> Published:
    return Published(
        changed.folder,
        changed.action,
        changed.written,
        changed.versions,
        changed.pin,
        changed.target,
    )
