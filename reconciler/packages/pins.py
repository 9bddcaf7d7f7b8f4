"""Pinning, at plan time: what a Connector will install, read from its source without
installing anything (docs/connectors.md, "What a plan pins").

A pin is the `package` block of the planned state: the source, the version and publisher, the
digest of what will be installed, and what the package declares (tools, egress hosts,
secrets, how it runs). Because it is part of the planned state, approvals bind to the exact
package and a changed package is a plan change. Pins read only what is cheap and local (a
folder's tree, a lock file, a builtin's manifest), except a registry, which is asked only when
the Connector's source, version or Registry changed since it was applied, or on `--refresh`:
a no-op plan never reaches the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from reconciler.egress.rules import PackEgress
from reconciler.errors import ValidationFailed
from reconciler.home import registries_dir
from reconciler.load.files import CLONED_DIR
from reconciler.packages.refusal import PackageRefused

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest
    from reconciler.packages.registry.client import TargetFacts

STATE_DIR = Path(CLONED_DIR) / "state"
MANIFEST_FILE = "connector.yaml"
MAX_MANIFEST = 64 * 1024


@dataclass(frozen=True)
class Source:
    """A Connector's validated `spec.source`: which one it is and its fields."""

    kind: str  # registry | pypi | path | builtin
    registry: str = ""
    package: str = ""
    lock: str = ""
    entry_point: str = ""
    path: str = ""
    builtin: str = ""


@dataclass(frozen=True)
class ConnectorView:
    """The fields of a validated Connector spec that pinning reads, taken from its
    normalised dict: a plan pins without building the pydantic model (plans stay fast)."""

    source: Source
    version: str
    publisher: str
    allow_downgrade: bool

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> ConnectorView:
        """The view of a spec that loading validated."""
        raw = spec["source"]
        if "registry" in raw:
            source = Source("registry", raw["registry"]["name"], raw["registry"]["package"])
        elif "pypi" in raw:
            pypi = raw["pypi"]
            source = Source(
                "pypi",
                package=pypi["package"],
                lock=pypi["lock"],
                entry_point=pypi.get("entryPoint") or "",
            )
        elif "path" in raw:
            source = Source("path", path=raw["path"])
        else:
            source = Source("builtin", builtin=raw["builtin"])
        return cls(
            source, str(spec["version"]), str(spec["publisher"]), bool(spec.get("allowDowngrade"))
        )


@dataclass(frozen=True)
class PinRequest:
    """One desired Connector to pin, and what pinning may read."""

    name: str
    spec: ConnectorView
    origin: str  # file:line of the Connector, which messages name
    applied: Mapping[str, Any] | None  # its applied state ({metadata, spec, package})
    root: Path
    revision: str | None  # the commit planned; None: the working tree
    registries: Mapping[str, Mapping[str, Any]]  # desired Registry specs by name
    refresh: bool = False
    fresh: set[str] | None = None  # collects `fresh_key`s of pins from a registry asked now
    registry_denies: tuple[PackEgress, ...] = ()  # the active packs' denyHosts


def pin(request: PinRequest) -> dict[str, Any]:
    """The `package` block for `request` (raises `PackageRefused` naming the Connector)."""
    check_downgrade(request)
    reused = _reusable(request)
    if reused is not None:
        return reused
    source = request.spec.source
    if source.kind == "registry":
        return _pin_registry(request)
    if source.kind == "pypi":
        return _pin_pypi(request)
    if source.kind == "path":
        return _pin_path(request, source.path)
    return _pin_builtin(request, source.builtin)


def check_downgrade(request: PinRequest) -> None:
    """A version lower than the applied one is refused unless the Connector allows it."""
    if request.applied is None or request.spec.allow_downgrade:
        return
    before = str(request.applied.get("spec", {}).get("version", ""))
    after = request.spec.version
    if before == after or not before:
        return
    lower = _lower(after, before)
    if lower is False:
        return
    how = "is lower than" if lower else "cannot be ordered against"
    raise PackageRefused(
        "downgrade",
        f"{request.origin}: connector.{request.name}: version {after} {how} the installed {before}",
        hint="to install an older version on purpose, set `allowDowngrade: true` (a change "
        "that needs approval)",
    )


def _lower(after: str, before: str) -> bool | None:
    """Whether version `after` is lower than `before` (None: one of them has no order)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(after) < Version(before)
    except InvalidVersion:
        return None


def _reusable(request: PinRequest) -> dict[str, Any] | None:
    """The applied pin of a registry package when nothing it was pinned from changed."""
    applied = request.applied
    if request.refresh or applied is None or request.spec.source.kind != "registry":
        return None
    package = applied.get("package")
    spec = applied.get("spec") or {}
    if not isinstance(package, dict) or package.get("source") != "registry":
        return None
    wanted = request.spec.source
    registry = request.registries.get(wanted.registry) or {}
    pinned_from = package.get("registry") or {}
    same = (
        spec.get("source") == {"registry": {"name": wanted.registry, "package": wanted.package}}
        and spec.get("version") == request.spec.version
        and spec.get("publisher") == request.spec.publisher
        and pinned_from.get("url") == registry.get("url")
        and pinned_from.get("root") == registry.get("root")
    )
    return dict(package) if same else None


def _pin_registry(request: PinRequest) -> dict[str, Any]:
    source = request.spec.source
    registry = request.registries.get(source.registry)
    if registry is None:  # loading refuses a dangling reference; a revision may still lack it
        raise PackageRefused(
            "not-found", f"{request.origin}: no Registry named {source.registry!r}"
        )
    namespace = source.package.split("/", 1)[0]
    if namespace != request.spec.publisher:
        raise PackageRefused(
            "outside-namespace",
            f"{request.origin}: connector.{request.name}: package {source.package} is not in "
            f"publisher {request.spec.publisher}'s namespace ({request.spec.publisher}/*)",
        )
    try:
        facts = _resolve(request, source, registry)
    except PackageRefused as exc:
        raise PackageRefused(
            exc.reason, f"{request.origin}: {exc.message}", hint=exc.hint
        ) from None
    if facts.role != request.spec.publisher:
        raise PackageRefused(
            "manifest-mismatch",
            f"{request.origin}: connector.{request.name}: {facts.target} is published by "
            f"{facts.role}, not by {request.spec.publisher}",
        )
    _check_declared(request, facts.declared, f"{facts.target} in registry {source.registry}")
    package = {
        "source": "registry",
        "version": request.spec.version,
        "publisher": request.spec.publisher,
        "digest": f"sha256:{facts.sha256}",
        "declared": facts.declared,
        "registry": {
            "name": source.registry,
            "url": str(registry["url"]),
            "root": str(registry["root"]),
            "target": facts.target,
            "length": facts.length,
            "role": facts.role,
        },
    }
    if request.fresh is not None:
        request.fresh.add(fresh_key(package))
    return package


def fresh_key(package: Mapping[str, Any]) -> str:
    """What marks a registry pin as resolved just now: its digest with the registry (url and
    root) and target it was resolved from, so another registry serving the same bytes does
    not spare this one's check (a repair of a pin its registry no longer signs)."""
    registry = package.get("registry") or {}
    where = [registry.get(key) for key in ("url", "root", "target")]
    return json.dumps([*where, package.get("digest")])


def _resolve(request: PinRequest, source: Source, registry: Mapping[str, Any]) -> TargetFacts:
    """The registry's verified facts of the Connector's package (python-tuf's client)."""
    from reconciler.packages.registry import client

    return client.resolve(
        name=source.registry,
        url=str(registry["url"]),
        pin=str(registry["root"]),
        package=source.package,
        version=request.spec.version,
        cache=registries_dir() / source.registry,
        repo_root=request.root,
        denies=request.registry_denies,
    )


def _pin_path(request: PinRequest, rel: str) -> dict[str, Any]:
    from reconciler.packages import tree
    from reconciler.packages.declared import declared_block

    folder = repository_path(request, rel, "source.path")
    if request.revision is None:
        listing = tree.read_folder(folder)
        data = _read_local(folder / MANIFEST_FILE)
    else:
        listing = tree.read_committed(request.root, request.revision, rel)
        data = _read_committed(request, f"{rel}/{MANIFEST_FILE}")
    if data is None:
        raise PackageRefused(
            "invalid-manifest", f"{request.origin}: {rel}/{MANIFEST_FILE}: no such file"
        )
    manifest = parse_manifest(data, f"{rel}/{MANIFEST_FILE}")
    declared = declared_block(manifest)
    _check_declared(request, declared, f"{rel}/{MANIFEST_FILE}")
    return {
        "source": "path",
        "version": request.spec.version,
        "publisher": request.spec.publisher,
        "digest": listing.digest,
        "declared": declared,
        "path": rel,
    }


def _pin_builtin(request: PinRequest, name: str) -> dict[str, Any]:
    from reconciler.packages import builtin

    digest, declared = builtin.pinned(name)
    _check_declared(request, declared, f"the builtin connector {name}")
    return {
        "source": "builtin",
        "version": request.spec.version,
        "publisher": request.spec.publisher,
        "digest": digest,
        "declared": declared,
        "builtin": name,
    }


def _pin_pypi(request: PinRequest) -> dict[str, Any]:
    from reconciler.packages.pypi import read_lock

    source = request.spec.source
    where = f"{CLONED_DIR}/{source.lock}"
    if PurePosixPath(source.lock).is_absolute() or ".." in PurePosixPath(source.lock).parts:
        raise PackageRefused(
            "not-found", f"{request.origin}: source.pypi.lock must be a path inside .cloned/"
        )
    data = (
        _read_local(request.root / CLONED_DIR / source.lock)
        if request.revision is None
        else _read_committed(request, where)
    )
    if data is None:
        raise PackageRefused(
            "not-found",
            f"{request.origin}: source.pypi.lock: {where} does not exist",
            hint=f"write it with `cloned connectors lock {request.name}` and commit it",
        )
    lock = read_lock(data, where, package=source.package, version=request.spec.version)
    locked = lock.get(source.package)
    assert locked is not None  # read_lock refuses a lock without the package at the version
    entry = source.entry_point or source.package
    return {
        "source": "pypi",
        "version": request.spec.version,
        "publisher": request.spec.publisher,
        "digest": f"sha256:{sorted(locked.hashes)[0]}",
        "declared": {
            "name": source.package,
            "version": request.spec.version,
            "run": {"command": [entry]},
        },
        "pypi": {"package": source.package, "lock": source.lock, "lockDigest": lock.digest},
    }


def _check_declared(request: PinRequest, declared: Mapping[str, Any], where: str) -> None:
    """The package is the one the Connector names: its version and its publisher."""
    for key, wanted in (("version", request.spec.version), ("publisher", request.spec.publisher)):
        found = declared.get(key)
        if found != wanted:
            raise PackageRefused(
                "manifest-mismatch",
                f"{request.origin}: connector.{request.name}: {where} declares {key} "
                f"{found}, the Connector says {wanted}",
            )


def repository_path(request: PinRequest, rel: str, field: str) -> Path:
    """`rel` inside the repository; a path that leaves it is refused naming `field`."""
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel:
        raise PackageRefused(
            "unsafe-entry",
            f"{request.origin}: {field} {rel!r} must be a path inside the repository",
        )
    folder = request.root / rel
    if request.revision is None and not folder.resolve().is_relative_to(request.root.resolve()):
        raise PackageRefused(
            "unsafe-entry", f"{request.origin}: {field} {rel!r} leaves the repository"
        )
    return folder


def parse_manifest(data: bytes, where: str) -> Manifest:
    """The manifest in `data`; "invalid-manifest" naming its first problem when it is not one."""
    from reconciler.load.manifest import read_manifest

    try:
        return read_manifest(data, where)
    except ValidationFailed as exc:
        first = exc.problems[0].render() if exc.problems else where
        raise PackageRefused("invalid-manifest", first) from None


def _read_local(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_MANIFEST * 16 + 1)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _read_committed(request: PinRequest, rel: str) -> bytes | None:
    from reconciler import gitrepo

    assert request.revision is not None
    return gitrepo.read_file(request.root, request.revision, rel, max_bytes=MAX_MANIFEST * 16)
