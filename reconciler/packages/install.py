"""Installing, at apply time: the pinned package made real, verified before it is unpacked and
stored read-only by its tree digest (docs/connectors.md, "Install, verify, load").

`install` takes the `package` block the plan pinned and refuses anything that is not exactly
that package: a registry download is verified by TUF and must be the pinned target; a folder
or builtin must still have the pinned tree; a lock must still be the pinned lock. The result
is a store entry (and an environment, for a pypi source or a package with requirements) and
the install record the provider keeps. Installing twice installs once: the store and the
environments are content-addressed, so an apply killed half way converges on the next one,
and nothing incomplete ever carries its final name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.atomic import ensure_private_dir
from reconciler.egress.rules import PackEgress
from reconciler.home import registries_dir
from reconciler.load.files import CLONED_DIR
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.store import Store
from reconciler.packages.tree import Tree, diff_trees, read_folder

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest

STATE = Path(CLONED_DIR) / "state"
STORE = STATE / "store"
ENVS = STATE / "envs"
DATA = STATE / "connectors"
ENV_MARKER_KEYS = ("path", "lockDigest", "filesDigest")


@dataclass(frozen=True)
class Installed:
    """What `install` made: the install record the provider stores (and `cloned.lock` shows)."""

    record: dict[str, Any]

    @property
    def tree(self) -> str | None:
        """The store entry's tree digest (None for a pypi source, which is an environment)."""
        value = self.record.get("tree")
        return str(value) if value is not None else None


def store_of(root: Path) -> Store:
    """The workspace's package store."""
    return Store(root / STORE)


def data_folder(root: Path, name: str) -> Path:
    """The connector's own private data folder (what `CLONED_CONNECTOR_DATA` names)."""
    return root / DATA / name / "data"


def install(
    *,
    root: Path,
    name: str,
    package: Mapping[str, Any],
    at: str,
    trusted_envs: Callable[[], Collection[str]] = tuple,
    fresh: bool = False,
    registry_denies: tuple[PackEgress, ...] = (),
) -> Installed:
    """Install the pinned `package` of connector `name`; `PackageRefused` when the source no
    longer holds exactly what was pinned. An environment already on disk is reused only when
    its files digest is in `trusted_envs()` (the install records Cloned keeps; asked only
    when an environment is built). `fresh`: a
    registry pin that this apply's plan resolved just now (else the registry is asked again
    whether it still vouches for it). `registry_denies`: the active packs' `denyHosts`, which
    a registry download obeys."""
    source = package["source"]
    if source == "pypi":
        record = _install_pypi(root, package, trusted_envs)
    else:
        tree, versions = _stage_and_store(root, package, fresh, registry_denies)
        record = {"source": source, "tree": tree.digest, "files": len(tree.files)}
        if versions is not None:
            record["versions"] = versions  # the TUF metadata versions it was verified at
        env = _requirements_env(root, tree.digest, package, trusted_envs)
        if env is not None:
            record["env"] = env
    folder = data_folder(root, name)
    ensure_private_dir(folder)  # its parents 0700 too: connectors/ and connectors/NAME/
    record["installedAt"] = at
    return Installed(record)


def _stage_and_store(
    root: Path, package: Mapping[str, Any], fresh: bool, denies: tuple[PackEgress, ...]
) -> tuple[Tree, dict[str, int] | None]:
    store = store_of(root)
    if package["source"] != "registry":
        kept = _already_stored(store, str(package["digest"]))
        if kept is not None:
            return kept, None
    else:
        known = store.tree_of_archive(str(package["digest"]).removeprefix("sha256:"))
        kept = _already_stored(store, known) if known is not None else None
        if kept is not None and _declares(store, kept, package):
            return kept, _confirm_registry(root, package, fresh, denies)
    versions = None
    with store.staging() as staging:
        unpacked = staging / "package"
        if package["source"] == "registry":
            tree, versions = _fetch_registry(root, package, staging, unpacked, fresh, denies)
        else:
            tree = _copy_local(root, package, unpacked)
        store.add(unpacked, tree)
    if package["source"] == "registry":
        store.record_archive(str(package["digest"]).removeprefix("sha256:"), tree.digest)
    return tree, versions


def _declares(store: Store, tree: Tree, package: Mapping[str, Any]) -> bool:
    """Whether a stored package's connector.yaml declares what the pin says (a check on the
    archive-to-tree note, which lives beside the store)."""
    from reconciler.packages.declared import declared_block

    entry = store.path(tree.digest)
    try:
        manifest = _package_manifest(entry, tree, str(package["digest"])) if entry else None
    except PackageRefused:
        return False
    return manifest is not None and declared_block(manifest) == package["declared"]


def _already_stored(store: Store, digest: str) -> Tree | None:
    """The store entry of a folder or builtin package pinned by its tree `digest`, when it is
    there and intact: content-addressed, it is exactly the pinned files (another connector
    installed the same ones), so the source need not be read again."""
    entry = store.path(digest)
    if entry is None:
        return None
    try:
        tree = read_folder(entry, skip_caches=False)
    except PackageRefused:
        return None
    return tree if tree.digest == digest else None


def _registry_args(
    root: Path, package: Mapping[str, Any], denies: tuple[PackEgress, ...]
) -> dict[str, Any]:
    pinned = package["registry"]
    return {
        "name": pinned["name"],
        "url": pinned["url"],
        "pin": pinned["root"],
        "package": _registry_package(pinned["target"], package["version"]),
        "version": package["version"],
        "length": int(pinned["length"]),
        "sha256": str(package["digest"]).removeprefix("sha256:"),
        "cache": registries_dir() / pinned["name"],
        "repo_root": root,
        "denies": denies,
    }


def _confirm_registry(
    root: Path, package: Mapping[str, Any], fresh: bool, denies: tuple[PackEgress, ...]
) -> dict[str, int]:
    """A registry package whose bytes the store holds already (verified when they were
    first installed): the registry is asked whether it still vouches for the pin (unless this
    apply's plan just did), and nothing is downloaded."""
    from reconciler.packages.registry import client

    versions, _ = client.download_pinned(
        **_registry_args(root, package, denies), dest=None, refresh=not fresh
    )
    return versions


def _fetch_registry(
    root: Path,
    package: Mapping[str, Any],
    staging: Path,
    unpacked: Path,
    fresh: bool,
    denies: tuple[PackEgress, ...],
) -> tuple[Tree, dict[str, int]]:
    from reconciler.packages.archive import extract
    from reconciler.packages.declared import declared_block
    from reconciler.packages.registry import client

    pinned = package["registry"]
    versions, archive = client.download_pinned(
        **_registry_args(root, package, denies),
        dest=staging / "download.tar.gz",
        refresh=not fresh,
    )
    assert archive is not None
    tree = extract(archive, unpacked)
    manifest = _package_manifest(unpacked, tree, pinned["target"])
    if declared_block(manifest) != package["declared"]:
        raise PackageRefused(
            "manifest-mismatch",
            f"registry {pinned['name']}: {pinned['target']}: its connector.yaml differs from "
            "what the registry's signed metadata declares",
        )
    return tree, versions


def _package_manifest(unpacked: Path, tree: Tree, where: str) -> Manifest:
    """The `connector.yaml` the package brings, as extracted: a signed archive without one, or
    with one that does not validate, is refused by name rather than read half way."""
    from reconciler.load.manifest import MAX_MANIFEST_BYTES
    from reconciler.packages.pins import MANIFEST_FILE, parse_manifest

    entry = next((f for f in tree.files if f.path == MANIFEST_FILE), None)
    if entry is None or entry.size > MAX_MANIFEST_BYTES:
        raise PackageRefused(
            "invalid-manifest",
            f"{where}: no {MANIFEST_FILE} of at most {MAX_MANIFEST_BYTES:,} bytes in the package",
        )
    return parse_manifest((unpacked / MANIFEST_FILE).read_bytes(), f"{where}:{MANIFEST_FILE}")


def _registry_package(target: str, version: str) -> str:
    """`publisher/name` from the target path `publisher/name-version.tar.gz`."""
    return target.removesuffix(f"-{version}.tar.gz")


def _copy_local(root: Path, package: Mapping[str, Any], unpacked: Path) -> Tree:
    """A path or builtin package copied into the store's staging, checked against its pin."""
    if package["source"] == "path":
        folder = root / package["path"]
        what = f"source.path {package['path']}"
    else:
        from reconciler.packages import builtin

        folder = builtin.verified(package["builtin"]).folder
        what = f"the builtin connector {package['builtin']}"
    before = read_folder(folder)
    if before.digest != package["digest"]:
        raise PackageRefused(
            "tree-changed",
            f"{what}: the files changed since the plan pinned them ({package['digest']})",
            hint="plan again to review the change",
        )
    shutil.copytree(folder, unpacked, ignore=shutil.ignore_patterns("__pycache__"))
    copied = read_folder(unpacked, skip_caches=False)
    if copied.digest != before.digest:
        raise PackageRefused(
            "tree-changed", f"{what}: {', '.join(diff_trees(before, copied))} while copying"
        )
    return copied


def _requirements_env(
    root: Path, tree_digest: str, package: Mapping[str, Any], trusted: Callable[[], Collection[str]]
) -> dict[str, Any] | None:
    """The environment a package's `requirements:` lock asks for, built from the store copy."""
    from reconciler.packages.pypi import build_env, read_lock

    rel = (package.get("declared") or {}).get("requirements")
    if not rel:
        return None
    entry = store_of(root).path(tree_digest)
    assert entry is not None
    lock = read_lock((entry / rel).read_bytes(), f"{package.get('digest')}:{rel}")
    env = build_env(lock, root / ENVS / lock.digest.removeprefix("sha256:")[:32], trusted=trusted())
    return _env_record(root, env.path, env.lock_digest, env.files_digest)


def _install_pypi(
    root: Path, package: Mapping[str, Any], trusted: Callable[[], Collection[str]]
) -> dict[str, Any]:
    from reconciler.packages.pypi import build_env, read_lock

    pinned = package["pypi"]
    where = f"{CLONED_DIR}/{pinned['lock']}"
    lock = read_lock(
        (root / CLONED_DIR / pinned["lock"]).read_bytes(),
        where,
        package=pinned["package"],
        version=package["version"],
    )
    if lock.digest != pinned["lockDigest"]:
        raise PackageRefused(
            "hash-mismatch",
            f"{where}: the lock changed since the plan pinned it ({pinned['lockDigest']})",
            hint="plan again to review the change",
        )
    env = build_env(lock, root / ENVS / lock.digest.removeprefix("sha256:")[:32], trusted=trusted())
    entry = package["declared"]["run"]["command"][0]
    env.entry(entry)  # refuses a package without the console script it is started by
    return {
        "source": "pypi",
        "tree": None,
        "env": _env_record(root, env.path, env.lock_digest, env.files_digest),
    }


def _env_record(root: Path, path: Path, lock_digest: str, files_digest: str) -> dict[str, Any]:
    return {
        "path": path.relative_to(root).as_posix(),
        "lockDigest": lock_digest,
        "filesDigest": files_digest,
    }


def missing(root: Path, record: Mapping[str, Any], store: Store) -> list[str]:
    """What of an install is gone, by looking (no hashing): the store entry, or the
    environment's completion marker. What a plan checks on every run."""
    problems = []
    tree = record.get("tree")
    if tree and store.path(str(tree)) is None:
        problems.append(f"missing: no package {tree} in the store")
    env = record.get("env")
    if isinstance(env, dict) and not _env_marker(root / env["path"]).is_file():
        problems.append(f"missing: the environment {env['path']}")
    return problems


def _env_marker(env: Path) -> Path:
    from reconciler.packages.pypi.env import MARKER  # only connectors with an environment

    return env / MARKER


def verify(root: Path, record: Mapping[str, Any]) -> list[str]:
    """What differs between an installed connector and its install record (empty: intact).
    Re-hashes every file; this is `cloned connectors verify` and the check before a start."""
    from reconciler.packages.pypi import verify_env

    problems: list[str] = []
    tree = record.get("tree")
    if tree:
        problems += store_of(root).verify(str(tree))
    env = record.get("env")
    if isinstance(env, dict):
        problems += verify_env(root / env["path"], files_digest=env["filesDigest"])
    return problems
