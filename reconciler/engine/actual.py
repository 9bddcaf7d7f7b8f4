"""Reading the actual state: the state database, or in a fresh clone the committed lock file.

The lock file (`.cloned/cloned.lock`) is the applied state written after each apply:
deterministic, sorted JSON that a reviewer can read and CI can plan against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler import __version__
from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.errors import ClonedError
from reconciler.providers.base import ActualResource
from reconciler.providers.lookup import managed_kinds, provider_for
from reconciler.redact import Redactor
from reconciler.state.db import StateDB

LOCK_FILE = Path(".cloned") / "cloned.lock"
LOCK_FORMAT_VERSION = 1

Source = Literal["state", "lock", "empty"]


@dataclass(frozen=True)
class ActualState:
    """What is applied now, and where that knowledge came from."""

    resources: dict[str, ActualResource]
    source: Source
    damaged: Mapping[str, str] = field(default_factory=dict)
    """address -> what is wrong with what is installed for it (a plan repairs it)."""


def from_db(db: StateDB, root: Path | None = None, *, refresh: bool = False) -> ActualState:
    """The applied state as each kind's provider reads it from the state database; with
    `root`, also what is damaged in what is installed (re-hashed with `refresh`)."""
    found: dict[str, ActualResource] = {}
    damaged: dict[str, str] = {}
    for kind in sorted(managed_kinds()):
        provider = provider_for(kind)
        assert provider is not None
        found.update(provider.read_actual(db))
        if root is not None:
            damaged.update(provider.damaged(root, db, refresh=refresh))
    return ActualState(dict(sorted(found.items())), "state", damaged)


def from_lock(root: Path) -> ActualState:
    """The applied state committed in `cloned.lock`, or an empty state when there is none."""
    path = root / LOCK_FILE
    if not path.exists():
        return ActualState({}, "empty")
    return parse_lock(path.read_bytes(), str(LOCK_FILE))


def parse_lock(data: bytes, where: str) -> ActualState:
    """The applied state a lock file's bytes record; `where` names the file in errors."""
    try:
        raw = parse_json(data.decode("utf-8"))
        if raw.get("format_version") != LOCK_FORMAT_VERSION:
            raise ValueError(f"format_version {raw.get('format_version')!r} is not supported")
        found = {
            address: ActualResource(
                address=address,
                kind=entry["kind"],
                name=entry["name"],
                state=entry["state"],
                digest=entry["digest"],
                origin="cloned.lock",
            )
            for address, entry in raw["resources"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ClonedError(f"{where}: not a valid lock file ({exc})") from None
    return ActualState(found, "lock")


def render_lock(
    resources: dict[str, ActualResource],
    redactor: Redactor,
    installed: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The lock file's text for this applied state: the same state always gives the same text.

    The state passes through the redactor (digests are of the unredacted state, so a plan
    against the lock still sees exactly what changed). `installed` is each installed
    connector's install record (its store entry, environment and the registry metadata
    versions it was verified at), shown for review; plans never read it."""
    payload: dict[str, Any] = {
        "format_version": LOCK_FORMAT_VERSION,
        "generated_by": f"cloned {__version__}",
        "resources": {
            address: {
                "kind": resource.kind,
                "name": resource.name,
                "digest": resource.digest,
                "state": redactor.data(resource.state),
            }
            for address, resource in sorted(resources.items())
        },
    }
    if installed:
        payload["installed"] = {address: dict(record) for address, record in installed.items()}
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_lock(root: Path, text: str) -> bool:
    """Write `cloned.lock` atomically; False when it already had exactly this text."""
    path = root / LOCK_FILE
    if path.exists() and path.read_text() == text:
        return False
    write_atomic(path, text)
    return True
