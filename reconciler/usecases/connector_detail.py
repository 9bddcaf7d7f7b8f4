"""`connectors show NAME`: everything about one applied Connector, its installed files
re-hashed (nothing is recorded); it reads what `connectors list` reads (connectors.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from reconciler.errors import ClonedError, ExitCode
from reconciler.usecases.connectors import (
    Applied,
    ConnectorRow,
    applied_row,
    read_applied,
    read_declared,
)

if TYPE_CHECKING:
    from reconciler.egress.sandbox import Confinement
    from reconciler.state.installs import Install


@dataclass(frozen=True)
class Pinned:
    """The package a Connector's applied state pins (`package`), typed for display."""

    source: str
    version: str
    digest: str
    publisher: str
    role: str | None  # the registry's publisher role that signed it
    registry: str | None
    target: str | None  # the registry target path
    length: int | None
    tools: tuple[str, ...]
    egress_hosts: tuple[str, ...]
    secrets: tuple[str, ...]
    run: tuple[str, ...]

    @classmethod
    def of(cls, package: Mapping[str, Any]) -> Pinned:
        """The typed view of a `package` block."""
        declared = package.get("declared") or {}
        registry = package.get("registry") or {}
        secrets = declared.get("secrets") or []
        return cls(
            source=str(package.get("source", "")),
            version=str(package.get("version", "")),
            digest=str(package.get("digest", "")),
            publisher=str(package.get("publisher", "")),
            role=registry.get("role"),
            registry=registry.get("name"),
            target=registry.get("target"),
            length=registry.get("length"),
            tools=tuple(declared.get("tools") or ()),
            egress_hosts=tuple(declared.get("egress_hosts") or ()),
            secrets=tuple(f"{s.get('name')} (${s.get('env')})" for s in secrets),
            run=tuple((declared.get("run") or {}).get("command") or ()),
        )


@dataclass(frozen=True)
class Health:
    """Whether the installed files verify now (`show` re-hashes them), and when checked."""

    checked_at: str
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "ok": not self.problems,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ConnectorDetail:
    """Everything about one applied Connector: `connectors show NAME`."""

    row: ConnectorRow
    state: Mapping[str, Any]  # {metadata, spec, package} as applied
    origin: str
    applied_at: str
    install: Install | None
    store_entry: Path | None
    environment: Path | None
    data_folder: Path
    health: Health | None  # None: nothing installed here to check
    isolation: Confinement
    """How it would start here: its sandbox profile and whether bubblewrap can isolate it."""

    @property
    def pinned(self) -> Pinned | None:
        package = self.state.get("package")
        return Pinned.of(package) if isinstance(package, Mapping) else None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        record = self.install
        return {
            **self.row.to_json(),
            "origin": self.origin,
            "applied_at": self.applied_at or None,
            "spec": self.state.get("spec"),
            "package": self.state.get("package"),
            "install": None
            if record is None
            else {
                "record": record.record,
                "store_entry": str(self.store_entry) if self.store_entry else None,
                "environment": str(self.environment) if self.environment else None,
                "verified_ok": record.verified_ok,
            },
            "data_folder": {"path": str(self.data_folder), "exists": self.data_folder.is_dir()},
            "health": self.health.to_json() if self.health is not None else None,
            "isolation": self.isolation.to_json(),
        }


def show(*, path: Path, name: str) -> ConnectorDetail:
    """Everything about applied Connector `name`, its installed files re-hashed (nothing is
    recorded); a name not applied is a `ClonedError` listing the known names."""
    from reconciler.clock import stamp
    from reconciler.egress.sandbox import expected
    from reconciler.load.files import find_root
    from reconciler.packages.install import data_folder, verify
    from reconciler.providers.starting import sandbox_of

    root = find_root(path)
    applied = read_applied(root)
    state = applied.states.get(name)
    if state is None:
        _unknown(name, applied, root)
    record = applied.installs.get(name) if applied.installs is not None else None
    where = record.record if record is not None else {}
    tree, env = where.get("tree"), where.get("env")
    origin, applied_at, _ = applied.origins[name]
    return ConnectorDetail(
        row=applied_row(name, state, applied),
        state=state,
        origin=origin,
        applied_at=applied_at,
        install=record,
        store_entry=_store_entry(root, tree) if tree else None,
        environment=root / env["path"] if isinstance(env, dict) else None,
        data_folder=data_folder(root, name),
        health=Health(stamp(), tuple(verify(root, record.record))) if record else None,
        isolation=expected(sandbox_of(state.get("spec")).profile),
    )


def _store_entry(root: Path, tree: str) -> Path:
    from reconciler.packages.install import STORE

    return root / STORE / "sha256" / tree.removeprefix("sha256:")


def _unknown(name: str, applied: Applied, root: Path) -> NoReturn:
    declared, _ = read_declared(root)
    if name in declared:
        raise ClonedError(
            f"connector {name!r} is declared ({declared[name][1]}) but not applied yet",
            hint="`cloned plan` shows what applying it would install",
        )
    names = sorted(applied.states.keys() | declared.keys())
    raise ClonedError(
        f"no Connector named {name!r} (known: {', '.join(names) if names else 'none'})",
        hint="`cloned connectors list` shows every connector",
    )
