"""The publisher's side of a registry: `cloned registry init|delegate|publish|revoke|timestamp|
rotate-root` as functions over a registry folder (`repository.py` does the signing and writing).

Every function checks that the keys it is given are the ones the registry trusts for the role
they sign (a wrong key is a `ClonedError` naming the flag), changes the metadata, and commits:
changed roles, then a new snapshot and timestamp signed by the online key."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from reconciler.errors import ClonedError, UsageError
from reconciler.model.names import NAME_PATTERN
from reconciler.packages.registry.repository import (
    REVOKED_FIELD,
    TOP_ROLES,
    Expiries,
    Repository,
    load,
    new_metadata,
    root_pin,
)

ROLE_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Changed:
    """What a publishing command did to the registry in `folder`."""

    folder: Path
    action: str
    written: tuple[str, ...]
    versions: dict[str, int]
    pin: str
    target: str | None = None


def _changed(repo: Repository, action: str, target: str | None = None) -> Changed:
    return Changed(
        repo.folder, action, tuple(repo.written), repo.versions(), root_pin(repo.folder), target
    )


def init(
    folder: Path,
    *,
    root_keys: list[Signer],
    threshold: int,
    targets_key: Signer,
    online_key: Signer,
    expiries: Expiries,
    now: datetime,
) -> Changed:
    """Create a registry: root (threshold of `root_keys`), targets, snapshot and timestamp."""
    if (folder / "metadata").exists():
        raise ClonedError(f"{folder}: already holds a registry (metadata/ exists)")
    distinct = {key.public_key.keyid: key for key in root_keys}
    if not 1 <= threshold <= len(distinct):
        raise UsageError(f"--threshold {threshold}: give at least that many distinct --root-key")
    root = Root(consistent_snapshot=True)
    root.roles[Root.type] = Role([], threshold)
    for key in distinct.values():
        root.add_key(key.public_key, Root.type)
    root.add_key(targets_key.public_key, Targets.type)
    root.add_key(online_key.public_key, Snapshot.type)
    root.add_key(online_key.public_key, Timestamp.type)
    root_md: Metadata[Root] = new_metadata(root, expiries.root, now)
    for key in distinct.values():
        root_md.sign(key, append=True)
    repo = Repository(
        folder,
        root_md,
        new_metadata(Targets(), expiries.targets, now),
        new_metadata(Snapshot(), expiries.snapshot, now),
        new_metadata(Timestamp(), expiries.timestamp, now),
    )
    repo.write(root_md, "1.root.json")
    # The first commit makes targets, snapshot and timestamp version 1 (bumped from 0).
    for md in (repo.targets, repo.snapshot, repo.timestamp):
        md.signed.version = 0
    repo.commit([Targets.type], _top_signers(targets_key, online_key), expiries=expiries, now=now)
    (folder / "targets").mkdir(parents=True, exist_ok=True)
    return _changed(repo, "init")


def delegate(
    folder: Path,
    *,
    name: str,
    publisher_keys: list[Signer],
    threshold: int,
    targets_key: Signer,
    online_key: Signer,
    expiries: Expiries,
    now: datetime,
) -> Changed:
    """Delegate `name/*` to a new publisher role with its keys and threshold."""
    repo = load(folder)
    _check_role_name(name)
    _check_top_keys(repo, targets_key, online_key)
    delegations = repo.targets.signed.delegations or Delegations(keys={}, roles={})
    assert delegations.roles is not None  # Cloned makes no hash-bin delegations
    if name in delegations.roles or name in repo.roles:
        raise ClonedError(
            f'{folder}: publisher "{name}" exists already (revoke it or rotate its key)'
        )
    distinct = {key.public_key.keyid: key for key in publisher_keys}
    if not 1 <= threshold <= len(distinct):
        raise UsageError(
            f"--threshold {threshold}: give at least that many distinct --publisher-key"
        )
    for key in distinct.values():
        delegations.keys[key.public_key.keyid] = key.public_key
    delegations.roles[name] = DelegatedRole(name, list(distinct), threshold, True, [f"{name}/*"])
    repo.targets.signed.delegations = delegations
    _revoked(repo).pop(name, None)
    repo.roles[name] = new_metadata(Targets(), expiries.targets, now)
    repo.roles[name].signed.version = 0
    signers = _top_signers(targets_key, online_key) | {name: list(distinct.values())}
    repo.commit([name, Targets.type], signers, expiries=expiries, now=now)
    return _changed(repo, "delegate")


def publish(
    folder: Path,
    archive: Path,
    *,
    target: str,
    declared: dict[str, Any],
    publisher_keys: list[Signer],
    online_key: Signer,
    expiries: Expiries,
    now: datetime,
) -> Changed:
    """Add `archive` as target path `target` (`publisher/name-version.tar.gz`) to its
    publisher's role, with `declared` as its `custom.cloned` block."""
    repo = load(folder)
    publisher = target.split("/", 1)[0]
    role = _delegated(repo, publisher)
    _check_keys(repo.targets.signed, publisher, publisher_keys, "--key")
    _check_online(repo, online_key)
    if target in repo.roles[publisher].signed.targets:
        raise ClonedError(f'{folder}: "{target}" is published already; publish a new version')
    info = TargetFile.from_file(target, str(archive), ["sha256"])
    info.unrecognized_fields["custom"] = {"cloned": declared}
    _store(folder, info, archive, repo)
    repo.roles[publisher].signed.targets[target] = info
    signers = {publisher: _signing(role, publisher_keys), Snapshot.type: [online_key]}
    repo.commit([publisher], signers, expiries=expiries, now=now)
    return _changed(repo, "publish", target)


def revoke(
    folder: Path,
    *,
    name: str,
    new_keys: list[Signer],
    threshold: int | None,
    targets_key: Signer,
    online_key: Signer,
    expiries: Expiries,
    now: datetime,
) -> Changed:
    """Remove publisher `name`'s delegation, or with `new_keys` replace its keys: metadata its
    old keys signed stops counting, and the role is re-signed by the new keys on its next
    publish."""
    repo = load(folder)
    role = _delegated(repo, name)
    _check_top_keys(repo, targets_key, online_key)
    delegations = repo.targets.signed.delegations
    assert delegations is not None and delegations.roles is not None
    _revoked(repo)[name] = sorted(set(_revoked(repo).get(name, [])) | set(role.keyids))
    shared = {k for other in delegations.roles.values() if other is not role for k in other.keyids}
    for keyid in set(role.keyids) - shared:
        delegations.keys.pop(keyid, None)
    if new_keys:
        distinct = {key.public_key.keyid: key for key in new_keys}
        wanted = threshold or role.threshold
        if not 1 <= wanted <= len(distinct):
            raise UsageError(f"--threshold {wanted}: give at least that many distinct --new-key")
        for key in distinct.values():
            delegations.keys[key.public_key.keyid] = key.public_key
        role.keyids, role.threshold = list(distinct), wanted
    else:
        del delegations.roles[name]
    repo.commit([Targets.type], _top_signers(targets_key, online_key), expiries=expiries, now=now)
    return _changed(repo, "rotate" if new_keys else "revoke")


def timestamp(folder: Path, *, online_key: Signer, expiries: Expiries, now: datetime) -> Changed:
    """A fresh timestamp of the current snapshot (what a registry does on a schedule)."""
    repo = load(folder)
    _check_online(repo, online_key)
    repo.resign_timestamp([online_key], expiries=expiries, now=now)
    return _changed(repo, "timestamp")


def rotate_root(
    folder: Path,
    *,
    current_keys: list[Signer],
    new_keys: list[Signer],
    threshold: int,
    expiries: Expiries,
    now: datetime,
) -> Changed:
    """Root version N+1 with `new_keys` (and `threshold`), signed by the current root keys and
    the new ones, as TUF requires of a root rotation."""
    repo = load(folder)
    _check_keys(repo.root.signed, Root.type, current_keys, "--root-key")
    needed = repo.root.signed.roles[Root.type].threshold
    if len({key.public_key.keyid for key in current_keys}) < needed:
        raise UsageError(f"--root-key: the current root needs {needed} distinct keys to sign")
    distinct = {key.public_key.keyid: key for key in new_keys}
    if not 1 <= threshold <= len(distinct):
        raise UsageError(
            f"--threshold {threshold}: give at least that many distinct --new-root-key"
        )
    root = repo.root.signed
    for keyid in list(root.roles[Root.type].keyids):
        root.revoke_key(keyid, Root.type)
    for key in distinct.values():
        root.add_key(key.public_key, Root.type)
    root.roles[Root.type].threshold = threshold
    root.version += 1
    root.expires = now + expiries.root
    repo.root.signatures.clear()
    for key in {k.public_key.keyid: k for k in [*current_keys, *new_keys]}.values():
        repo.root.sign(key, append=True)
    repo.write(repo.root, f"{root.version}.root.json")
    return _changed(repo, "rotate-root")


def _store(folder: Path, info: TargetFile, archive: Path, repo: Repository) -> None:
    # Consistent snapshots: the file is fetched as DIR/<sha256>.<basename> of the target path.
    directory, _, basename = info.path.rpartition("/")
    dest = folder / "targets" / directory / f"{info.hashes['sha256']}.{basename}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(archive, temp)
    temp.replace(dest)
    repo.written.append(str(dest.relative_to(folder)))


def _revoked(repo: Repository) -> dict[str, list[str]]:
    fields = repo.targets.signed.unrecognized_fields
    revoked: dict[str, list[str]] = fields.setdefault(REVOKED_FIELD, {})
    return revoked


def _top_signers(targets_key: Signer, online_key: Signer) -> dict[str, list[Signer]]:
    return {Targets.type: [targets_key], Snapshot.type: [online_key]}


def _check_role_name(name: str) -> None:
    if not ROLE_NAME.fullmatch(name) or name in TOP_ROLES:
        raise UsageError(
            f'--name "{name}": a publisher is lower-case letters, digits and dashes, and not '
            f"one of {', '.join(TOP_ROLES)}"
        )


def _delegated(repo: Repository, name: str) -> DelegatedRole:
    delegations = repo.targets.signed.delegations
    if delegations is None or delegations.roles is None or name not in delegations.roles:
        raise ClonedError(f'{repo.folder}: no publisher "{name}" (add it with `registry delegate`)')
    return delegations.roles[name]


def _check_top_keys(repo: Repository, targets_key: Signer, online_key: Signer) -> None:
    _check_keys(repo.root.signed, Targets.type, [targets_key], "--targets-key")
    _check_online(repo, online_key)


def _check_online(repo: Repository, online_key: Signer) -> None:
    _check_keys(repo.root.signed, Snapshot.type, [online_key], "--online-key")
    _check_keys(repo.root.signed, Timestamp.type, [online_key], "--online-key")


def _check_keys(delegator: Root | Targets, role: str, keys: list[Signer], option: str) -> None:
    trusted = set(delegator.get_delegated_role(role).keyids)
    for key in keys:
        if key.public_key.keyid not in trusted:
            raise ClonedError(
                f"{option}: key {key.public_key.keyid[:16]} is not a key of the registry's "
                f'"{role}" role',
                hint="use the key the role was created with (`registry init` or `delegate`)",
            )


def _signing(role: DelegatedRole, keys: list[Signer]) -> list[Signer]:
    distinct = list({key.public_key.keyid: key for key in keys}.values())
    if len(distinct) < role.threshold:
        raise UsageError(f'--key: "{role.name}" needs {role.threshold} distinct keys to sign')
    return distinct
