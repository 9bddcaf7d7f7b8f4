"""The registry client the Connector provider calls: which signed target a package is, and
its verified download. python-tuf's `ngclient.Updater` does every check; this module bootstraps
it from the Registry's pin and reports what it verified.

Bootstrap: `1.root.json` is fetched and must hash to the Registry's `root` pin; those bytes are
the Updater's `bootstrap=` root, and TUF walks any root rotations from there. TUF's cache (the
highest versions seen, which rollback protection needs) lives in `cache/<pin>/`, so a changed
pin starts from nothing. A package `publisher/name` at `version` is the target path
`publisher/name-version.tar.gz`, delegated to the role named after its publisher."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import DelegatedRole, Metadata, TargetFile, Targets
from tuf.ngclient import Updater, UpdaterConfig

from reconciler.egress.rules import PackEgress
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.registry.fetcher import RegistryFetcher
from reconciler.packages.registry.refusals import Context, converted, revoked_roles

TOP = ("root", "timestamp", "snapshot", "targets")
PIN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class TargetFacts:
    """A package as the registry's verified metadata describes it."""

    registry: str
    target: str  # the TUF target path, `publisher/name-version.tar.gz`
    length: int
    sha256: str
    role: str  # the role that delegates the target (the publisher)
    declared: dict[str, Any]  # the target's `custom.cloned` block: what the package declares
    versions: dict[str, int]  # the metadata versions verified at (top roles and `role`)

    def to_json(self) -> dict[str, Any]:
        """The facts as the lock and `--json` outputs record them."""
        return {
            "registry": self.registry,
            "target": self.target,
            "length": self.length,
            "sha256": self.sha256,
            "role": self.role,
            "declared": self.declared,
            "versions": self.versions,
        }


@dataclass(frozen=True)
class _Session:
    updater: Updater
    context: Context
    target: str


def target_path(package: str, version: str) -> str:
    """The TUF target path of `publisher/name` at `version`."""
    return f"{package}-{version}.tar.gz"


def resolve(
    *,
    name: str,
    url: str,
    pin: str,
    package: str,
    version: str,
    cache: Path,
    repo_root: Path,
    denies: Sequence[PackEgress] = (),
) -> TargetFacts:
    """The verified facts of `package` at `version` in registry `name` (`url`, pinned by
    `pin`); `cache` is this registry's state folder; `denies`, the active packs' `denyHosts`,
    refuse a download from a host they name. Any failure is a `PackageRefused`."""
    session = _open(
        name=name,
        url=url,
        pin=pin,
        package=package,
        version=version,
        cache=cache,
        repo_root=repo_root,
        denies=denies,
    )
    info = _targetinfo(session)
    return _facts(session, info)


def download_pinned(
    *,
    name: str,
    url: str,
    pin: str,
    package: str,
    version: str,
    length: int,
    sha256: str,
    cache: Path,
    repo_root: Path,
    dest: Path | None,
    refresh: bool,
    denies: Sequence[PackEgress] = (),
) -> tuple[dict[str, int], Path | None]:
    """Download the pinned target, verified by TUF against the pinned length and sha256
    (with `dest` None, nothing is downloaded: the caller holds those bytes already).
    Without `refresh` the caller vouches that `resolve` refreshed the metadata for exactly
    this target moments ago (an apply installing what its own plan just resolved); with it
    (a repair reinstalling an applied pin) the metadata is refreshed first, and a registry
    that no longer vouches for the pin refuses it. Returns the metadata versions it was
    verified at (from the trusted cache) and `dest`."""
    session = _open(
        name=name,
        url=url,
        pin=pin,
        package=package,
        version=version,
        cache=cache,
        repo_root=repo_root,
        denies=denies,
    )
    info = TargetFile(length, {"sha256": sha256}, session.target)
    if refresh:
        current = _targetinfo(session)
        if (current.length, current.hashes.get("sha256")) != (length, sha256):
            session.context.refuse(
                "tampered",
                f"the registry now signs another {session.target} than the one pinned "
                f"(sha256 {sha256})",
            )
    if dest is not None:
        _fetch(session, info, dest)
    metadata_dir = session.context.metadata_dir
    return _versions(metadata_dir, _delegating_role(metadata_dir, info.path)), dest


def _fetch(session: _Session, info: TargetFile, dest: Path) -> None:
    """Download `info` to `dest` through TUF's verification (no file left on a mismatch)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        with converted(session.context):
            session.updater.download_target(info, str(partial))
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)


def _open(
    *,
    name: str,
    url: str,
    pin: str,
    package: str,
    version: str,
    cache: Path,
    repo_root: Path,
    denies: Sequence[PackEgress],
) -> _Session:
    if not PIN.fullmatch(pin):
        raise PackageRefused(
            "untrusted-root", f'registry "{name}": root pin {pin!r} is not sha256:<64 hex>'
        )
    fetcher, metadata_url, targets_url = _source(name, url, repo_root, denies)
    pin_hex = pin.removeprefix("sha256:")
    metadata_dir, targets_dir = cache / pin_hex / "metadata", cache / pin_hex / "targets"
    context = Context(name, f"{package} {version}", fetcher, metadata_dir)
    bootstrap = _bootstrap(context, metadata_url, pin)
    metadata_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with converted(context):
        updater = Updater(
            str(metadata_dir),
            metadata_url,
            str(targets_dir),
            targets_url,
            fetcher,
            UpdaterConfig(),
            bootstrap=bootstrap,
        )
    return _Session(updater, context, target_path(package, version))


def _source(
    name: str, url: str, repo_root: Path, denies: Sequence[PackEgress]
) -> tuple[RegistryFetcher, str, str]:
    base = url if url.endswith("/") else url + "/"
    if base.startswith("file:"):
        # The fetcher is confined to the registry folder; URLs inside are relative to it.
        folder = (repo_root / base.removeprefix("file:")).resolve()
        if not folder.is_relative_to(repo_root.resolve()):
            raise PackageRefused(
                "unreachable", f"registry url {url}: a file: registry must be inside the repository"
            )
        return RegistryFetcher(folder), "file:metadata/", "file:targets/"
    fetcher = RegistryFetcher(None, name=name, url=base, denies=denies)
    return fetcher, base + "metadata/", base + "targets/"


def _bootstrap(context: Context, metadata_url: str, pin: str) -> bytes:
    with converted(context):
        data = context.fetcher.download_bytes(
            metadata_url + "1.root.json", UpdaterConfig().root_max_length
        )
    found = "sha256:" + hashlib.sha256(data).hexdigest()
    if found != pin:
        context.refuse(
            "untrusted-root",
            f"1.root.json has {found}, but the Registry pins {pin}; if the registry was "
            "re-created, check the new pin with its publisher before changing `root`",
        )
    return data


def _targetinfo(session: _Session) -> TargetFile:
    with converted(session.context):
        session.updater.refresh()
        info = session.updater.get_targetinfo(session.target)
    if info is None:
        _explain_missing(session)
    return info


def _explain_missing(session: _Session) -> NoReturn:
    publisher = session.target.split("/", 1)[0]
    metadata_dir = session.context.metadata_dir
    delegations = _roles(metadata_dir)
    if publisher not in delegations and publisher in revoked_roles(metadata_dir):
        session.context.refuse(
            "revoked", f'the registry revoked publisher "{publisher}"', where="targets.json"
        )
    for role, delegated in delegations.items():
        paths = list(delegated.paths or [])
        listed = _probe(session, role, paths)
        if listed is not None and session.target in listed.signed.targets:
            session.context.refuse(
                "outside-namespace",
                f'role "{role}" lists {session.target} but is delegated only {", ".join(paths)}',
                where=f"{role}.json",
            )
    owner = f"{publisher}.json" if publisher in delegations else "targets.json"
    session.context.refuse("not-found", f"no target {session.target} in the registry", where=owner)


def _probe(session: _Session, role: str, paths: list[str]) -> Metadata[Targets] | None:
    # Have the Updater itself load and verify `role` by asking for a path inside its
    # namespace; what it then caches is metadata it trusted.
    for pattern in paths:
        probe = pattern.replace("*", "").replace("?", "x")
        with converted(session.context):
            session.updater.get_targetinfo(probe)
        cached = _cached(session.context.metadata_dir, role)
        if cached is not None:
            return cached
    return None


def _facts(session: _Session, info: TargetFile) -> TargetFacts:
    metadata_dir = session.context.metadata_dir
    role = _delegating_role(metadata_dir, info.path)
    custom = info.custom.get("cloned") if isinstance(info.custom, dict) else None
    return TargetFacts(
        registry=session.context.registry,
        target=info.path,
        length=info.length,
        sha256=info.hashes["sha256"],
        role=role,
        declared=custom if isinstance(custom, dict) else {},
        versions=_versions(metadata_dir, role),
    )


def _versions(metadata_dir: Path, role: str) -> dict[str, int]:
    """The versions of the trusted metadata cached for the top roles and `role`."""
    versions = {}
    for name in (*TOP, role):
        cached = _cached(metadata_dir, name)
        if cached is not None:
            versions[name] = cached.signed.version
    return versions


def _delegating_role(metadata_dir: Path, target: str) -> str:
    top = _cached(metadata_dir, "targets")
    if top is not None and target in top.signed.targets:
        return "targets"
    for role, delegated in _roles(metadata_dir).items():
        if not delegated.is_delegated_path(target):
            continue
        cached = _cached(metadata_dir, role)
        if cached is not None and target in cached.signed.targets:
            return role
    raise PackageRefused("not-found", f"{target}: no trusted role lists it")


def _roles(metadata_dir: Path) -> dict[str, DelegatedRole]:
    top = _cached(metadata_dir, "targets")
    if top is None or top.signed.delegations is None:
        return {}
    return dict(top.signed.delegations.roles or {})


def _cached(metadata_dir: Path, role: str) -> Metadata[Any] | None:
    try:
        return Metadata.from_file(str(metadata_dir / f"{role}.json"))
    except (OSError, ValueError, RepositoryError):
        return None
