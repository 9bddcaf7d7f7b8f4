"""`vault status|list|set|rm`: the workspace's vault, chosen by its Workspace (docs/vault.md).

The Workspace is read from the desired state (`.cloned/`, as `validate` reads it), and the
provider it names is opened through `reconciler.vault.select.open_vault`, which refuses `none`
and the dev vault under `strict` or tier `enterprise`. `set` and `rm` record a
`vault.secret_set` / `vault.secret_deleted` event in the state database's audit log when the
workspace has one (specs/audit.md): name, version and provider, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ExitCode

if TYPE_CHECKING:
    from reconciler.vault.types import SecretInfo, VaultProvider, VaultStatus


@dataclass(frozen=True)
class StatusResult:
    """`vault status`: the provider's one status line; exit 1 when it did not answer."""

    status: VaultStatus

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.status.reachable else ExitCode.ERROR

    def to_json(self) -> dict[str, Any]:
        return self.status.to_json()


@dataclass(frozen=True)
class SecretList:
    """`vault list`: every secret's name, version and time; never a value."""

    provider: str
    secrets: tuple[SecretInfo, ...]
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "secrets": [s.to_json() for s in self.secrets]}


@dataclass(frozen=True)
class SecretChanged:
    """`vault set` or `vault rm`: what changed, and whether the audit log recorded it."""

    action: str  # "set" | "deleted"
    provider: str
    name: str
    version: str | None
    audited: bool
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            self.action: {"name": self.name, "version": self.version},
            "provider": self.provider,
            "audited": self.audited,
        }


def status(*, path: Path) -> StatusResult:
    """The status of the vault of the workspace containing `path`."""
    _root, vault = _open(path)
    return StatusResult(vault.status())


def list_secrets(*, path: Path) -> SecretList:
    """The metadata of every secret in the workspace's vault, sorted by name."""
    _root, vault = _open(path)
    return SecretList(vault.provider, tuple(vault.names()))


def set_secret(*, path: Path, name: str, value: str) -> SecretChanged:
    """Store `value` as a new version of secret `name` and audit it (by name and version)."""
    from reconciler.redact import active
    from reconciler.vault.types import check_name, check_value

    active().register(value)  # from here on, nothing printed can show it
    check_name(name)
    check_value(name, value)
    root, vault = _open(path)
    info = vault.set(name, value)
    audited = _audit(root, "vault.secret_set", name, info.version, vault.provider)
    return SecretChanged("set", vault.provider, name, info.version, audited)


def delete_secret(*, path: Path, name: str) -> SecretChanged:
    """Remove secret `name` (every version) and audit it."""
    from reconciler.vault.types import SecretMissing, check_name

    check_name(name)
    root, vault = _open(path)
    info = vault.exists(name)
    if info is None:
        raise SecretMissing(name, f"the {vault.provider} vault has no secret {name!r}")
    vault.delete(name)
    audited = _audit(root, "vault.secret_deleted", name, info.version, vault.provider)
    return SecretChanged("deleted", vault.provider, name, info.version, audited)


def _open(path: Path) -> tuple[Path, VaultProvider]:
    """The repository root and the vault its desired Workspace names."""
    from reconciler.home import cloned_home
    from reconciler.load.files import find_root
    from reconciler.load.workspace import load_desired_state
    from reconciler.vault.select import open_vault

    root = find_root(path)
    workspace = load_desired_state(root).workspace()
    return root, open_vault(root, workspace.metadata.name, workspace.spec, home=cloned_home())


def _audit(root: Path, type_: str, name: str, version: str | None, provider: str) -> bool:
    """Record `type_` for secret `name` when the workspace has a state database."""
    from reconciler.engine.connectors import journal_of
    from reconciler.state.db import StateDB

    with StateDB.existing(root) as db:
        if db is None:
            return False
        journal = journal_of(db)
        payload = {"name": name, "version": version, "provider": provider}
        with db.transaction() as connection:
            journal.record(connection, type_, f"vault://{name}", payload)
    return True
