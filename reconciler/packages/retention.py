"""Archive before purge: what a deleted connector leaves behind (its installed package and its
private data) moves to `.cloned/state/archive/ID/` with a manifest, instead of being removed.
`cloned connectors restore NAME` brings the newest archive of NAME back; `cloned archive
purge --older-than D` removes old archives, never one younger than the Workspace's retention.

An archive is written under a temporary name and renamed into place once its manifest, its
package copy and its data are all inside, so a crash leaves either no archive (the connector
still installed) or a whole one; a leftover temporary folder that holds a manifest is finished
the next time archives are listed, and the next delete of the same connector continues its own
leftover (which may hold the data already) rather than starting another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.atomic import write_atomic
from reconciler.errors import ClonedError
from reconciler.packages.install import STATE, data_folder, store_of
from reconciler.packages.tree import read_folder

ARCHIVE = STATE / "archive"
MANIFEST = "manifest.json"
FORMAT = "cloned.archive/v1"
PARTIAL = ".partial-"
_ID = re.compile(r"^[a-z0-9-]{1,63}-\d{8}T\d{6}Z-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Archived:
    """One archive: which connector, when, and what it holds."""

    id: str
    name: str
    address: str
    archived_at: str
    plan_id: str
    version: str
    source: str
    package: bool  # it holds the installed package
    data: bool  # it holds the connector's data folder
    path: Path
    install: Mapping[str, Any]
    state: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The archive as `cloned archive list --json` prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "archived_at": self.archived_at,
            "plan_id": self.plan_id,
            "version": self.version,
            "source": self.source,
            "package": self.package,
            "data": self.data,
            "path": str(self.path),
        }


def archive_connector(
    *,
    root: Path,
    name: str,
    state: Mapping[str, Any],
    install: Mapping[str, Any] | None,
    at: str,
    plan_id: str,
) -> Archived:
    """Move connector `name`'s installed package and data into a new archive; the store
    entry itself is left for the caller to remove when nothing else uses it."""
    archive_id = f"{name}-{_compact(at)}-{plan_id.removeprefix('sha256:')[:8]}"
    final = root / ARCHIVE / archive_id
    if final.exists():  # the same plan deleting the same connector again: already archived
        return _read(final)
    # An earlier delete of this connector killed half way may hold its data already: that
    # archive is finished, never removed nor left aside for a new one without the data.
    partial = _leftover(root, name) or root / ARCHIVE / f"{PARTIAL}{archive_id}"
    archive_id = partial.name.removeprefix(PARTIAL)
    final = root / ARCHIVE / archive_id
    partial.mkdir(parents=True, mode=0o700, exist_ok=True)
    shutil.rmtree(partial / "package", ignore_errors=True)  # a copy: exported again below
    manifest = {
        "format": FORMAT,
        "id": archive_id,
        "name": name,
        "address": f"connector.{name}",
        "archived_at": at,
        "plan_id": plan_id,
        "state": dict(state),
        "install": dict(install or {}),
        "package": _export_package(root, install, partial / "package"),
    }
    write_atomic(partial / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    data = data_folder(root, name)
    if data.is_dir() and not (partial / "data").exists():
        os.rename(data, partial / "data")
    os.rename(partial, final)
    return _read(final)


def _leftover(root: Path, name: str) -> Path | None:
    """The newest half-made archive of connector `name`, if a killed delete left one."""
    own = re.compile(rf"^{re.escape(PARTIAL + name)}-\d{{8}}T\d{{6}}Z-[0-9a-f]{{8}}$")
    folder = root / ARCHIVE
    found = sorted(p for p in folder.glob(f"{PARTIAL}*") if own.match(p.name))
    return found[-1] if found else None


def _export_package(root: Path, install: Mapping[str, Any] | None, dest: Path) -> bool:
    tree = (install or {}).get("tree")
    if not tree:
        return False  # a pypi environment: rebuilt from its lock, never copied
    store = store_of(root)
    if store.path(str(tree)) is None or store.verify(str(tree)):
        return False  # missing or altered in the store: nothing trustworthy to keep
    store.export(str(tree), dest)
    return True


def list_archives(root: Path) -> list[Archived]:
    """Every archive, oldest first (finishing any an interrupted delete left half-named)."""
    folder = root / ARCHIVE
    if not folder.is_dir():
        return []
    for leftover in sorted(folder.glob(f"{PARTIAL}*")):
        if leftover.is_symlink() or not leftover.is_dir():
            leftover.unlink()  # not a folder a delete made: never followed, never finished
        elif (leftover / MANIFEST).is_file():
            os.rename(leftover, folder / leftover.name.removeprefix(PARTIAL))
        else:
            shutil.rmtree(leftover)
    found = [_read(entry) for entry in sorted(folder.iterdir()) if _ID.match(entry.name)]
    return sorted(found, key=lambda a: (a.archived_at, a.id))


def restore(root: Path, name: str) -> Archived:
    """Bring back the newest archive of connector `name`: its package into the store and its
    data folder into place; the archive is then removed."""
    archives = [a for a in list_archives(root) if a.name == name]
    if not archives:
        raise ClonedError(
            f"no archive of connector {name!r}", hint="`cloned archive list` shows the archives"
        )
    chosen = archives[-1]
    data = data_folder(root, name)
    if chosen.data and not _free(data):
        raise ClonedError(
            f"{data}: connector {name!r} already has data there (a folder with files, a "
            "file or a link); restoring would overwrite it",
            hint="move it away first",
        )
    if chosen.package:
        _restore_package(root, chosen)
    if chosen.data:
        data.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if data.exists():
            data.rmdir()
        os.rename(chosen.path / "data", data)
    shutil.rmtree(chosen.path)
    return chosen


def _free(data: Path) -> bool:
    """Whether the archived data folder can move to `data`: nothing is there, or an empty
    folder (a file or a link there, even a dangling one, is someone's)."""
    if data.is_symlink():
        return False
    if not data.exists():
        return True
    return data.is_dir() and not any(data.iterdir())


def _restore_package(root: Path, archived: Archived) -> None:
    expected = str(archived.install.get("tree"))
    store = store_of(root)
    with store.staging() as staging:
        copy = staging / "package"
        shutil.copytree(archived.path / "package", copy)
        tree = read_folder(copy, skip_caches=False)
        if tree.digest != expected:
            raise ClonedError(
                f"{archived.path}: the archived package changed since it was archived "
                f"({tree.digest}, not {expected}); not restored"
            )
        store.add(copy, tree)


def purge(
    root: Path, *, older_than: timedelta, retention: timedelta, now: datetime
) -> list[Archived]:
    """Remove the archives older than `older_than`; refused while `older_than` is shorter
    than the Workspace's `retention`. Returns what was removed."""
    if older_than < retention:
        raise ClonedError(
            f"--older-than {_days(older_than)}: the Workspace keeps archives for "
            f"{_days(retention)} (spec.archive.retentionDays); purge only older ones"
        )
    removed = []
    for archived in list_archives(root):
        if now - _parse(archived.archived_at) > older_than:
            shutil.rmtree(archived.path)
            removed.append(archived)
    return removed


def _read(folder: Path) -> Archived:
    if folder.is_symlink():  # restore would move data out of wherever it leads
        raise ClonedError(f"{folder}: a link, not an archive a delete made; not read")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        state = manifest["state"]
        _check_manifest(manifest)
        return Archived(
            id=manifest["id"],
            name=manifest["name"],
            address=manifest["address"],
            archived_at=manifest["archived_at"],
            plan_id=manifest["plan_id"],
            version=str(state.get("spec", {}).get("version", "")),
            source=str((state.get("package") or {}).get("source", "")),
            package=bool(manifest["package"]),
            data=(folder / "data").is_dir(),
            path=folder,
            install=manifest["install"],
            state=state,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ClonedError(f"{folder / MANIFEST}: not a readable archive manifest ({exc})") from None


def _check_manifest(manifest: Mapping[str, Any]) -> None:
    """The fields listing, purging and restoring rely on have their types (a hand-edited or
    damaged manifest is refused, never half-used); `archived_at` is a time with its zone."""
    for key in ("id", "name", "address", "archived_at", "plan_id"):
        if not isinstance(manifest[key], str):
            raise TypeError(f"{key} is not a string")
    for key in ("state", "install"):
        if not isinstance(manifest[key], dict):
            raise TypeError(f"{key} is not an object")
    if _parse(manifest["archived_at"]).utcoffset() is None:
        raise ValueError("archived_at has no time zone")


def _compact(at: str) -> str:
    """`2026-12-01T10:00:00Z` as `20261201T100000Z` (archive ids sort by time)."""
    return _parse(at).strftime("%Y%m%dT%H%M%SZ")


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _days(delta: timedelta) -> str:
    return f"{delta.days}d" if delta.seconds == 0 else f"{delta.total_seconds():.0f}s"
