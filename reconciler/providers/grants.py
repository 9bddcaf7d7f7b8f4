"""Which secrets a connector receives when it starts, and reading them from the vault.

A connector receives secret S only when all of these hold (specs/vault.md, "Grants"):

- its applied `spec.secrets` lists S (reviewed: adding one is a `connector-widening` change);
- the applied SecretRef S exists and its `usedBy.connectors` names the connector (the grant is
  the SecretRef's, reviewed on its own);
- its package's manifest declares S with how to receive it: `env: NAME` (an environment
  variable) or `file: PATH` (a file in its private data folder, mode 0600, written at each
  start).

Anything else is a `GrantRefused` and the connector does not start: a declared secret that is
not granted would leave it half configured. A secret its manifest declares but its spec does
not list is simply not given. The values are read from the Workspace's vault only here, at the
moment of a start, through `vault.select.open_vault`; every value read is registered with the
redactor by the provider (`vault.types.revealed`) before this module sees it. A vault that
cannot be asked fails the start (`VaultError`). What is granted is audited by name only
(`Grants.payload`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ClonedError
from reconciler.model.kinds import SecretRefSpec
from reconciler.model.workspace import WorkspaceSpec

if TYPE_CHECKING:
    from reconciler.state.db import StateDB

VAULT_SCHEME = "vault://"
RESERVED_ENV = frozenset(
    {"PATH", "HOME", "LANG", "PWD", "CLONED_CONNECTOR_DATA", "LD_PRELOAD", "LD_LIBRARY_PATH"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}
)
"""Variables Cloned sets (or that change how any program loads), compared in upper case (some
clients read `Https_Proxy` as well): a secret cannot take them."""


class GrantRefused(ClonedError):
    """A connector asks for a secret it is not granted, or cannot say how to receive it."""


@dataclass(frozen=True)
class Granted:
    """One secret a connector receives: the SecretRef's name, the vault's name for it, and
    where it goes (`env` and the variable, or `file` and the path in the data folder)."""

    secret: str
    vault_name: str
    delivery: str
    target: str

    def to_json(self) -> dict[str, str]:
        """The audited form: names and places, never a value."""
        return {
            "secret": self.secret,
            "vault": self.vault_name,
            "delivery": self.delivery,
            "target": self.target,
        }


@dataclass(frozen=True)
class Grants:
    """What one start of a connector receives; the values are never in the repr."""

    granted: tuple[Granted, ...] = ()
    provider: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    files: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Path relative to the connector's data folder -> the value."""

    def payload(self, connector: str) -> dict[str, Any]:
        """The `secret.granted` audit event's payload (specs/audit.md)."""
        return {
            "connector": connector,
            "provider": self.provider,
            "secrets": [grant.to_json() for grant in self.granted],
        }

    def write_files(self, data: Path) -> None:
        """Write the file deliveries into the connector's data folder `data` (0600).

        A path that resolves outside the folder (a link the connector planted) is refused; the
        write itself walks the folders by descriptor without following any link, so a link
        swapped in after that check is not followed either (the connector's own files are its
        to change while it runs)."""
        base = data.resolve()
        for relative, value in sorted(self.files.items()):
            path = (data / relative).resolve()
            if not path.is_relative_to(base) or path == base:
                raise GrantRefused(f"secret file {relative!r} is outside the data folder")
            _write_below(base, relative, value)


def _write_below(base: Path, relative: str, value: str) -> None:
    """Write `value` to `relative` under `base` (0600, replaced in one rename), opening each
    folder with O_NOFOLLOW relative to the one before."""
    import contextlib
    import os

    *folders, name = relative.split("/")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(base, flags)
    try:
        for folder in folders:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700, dir_fd=fd)
            inner = os.open(folder, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        temp = f".{name}.{os.getpid()}.tmp"
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        with os.fdopen(out, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError as exc:
        raise GrantRefused(
            f"secret file {relative!r} could not be written in the data folder ({exc.strerror})"
        ) from None
    finally:
        os.close(fd)


def vault_name(ref: str) -> str:
    """The vault's name for a SecretRef's `ref` (`vault://NAME`)."""
    return ref.removeprefix(VAULT_SCHEME)


def granted(
    connector: str,
    secrets: Sequence[str],
    declared: Sequence[Mapping[str, Any]],
    refs: Mapping[str, SecretRefSpec],
) -> tuple[Granted, ...]:
    """What connector `connector` receives (see the module); `GrantRefused` naming the first
    secret it may not have, or cannot receive."""
    how = {str(entry.get("name")): entry for entry in declared}
    found: list[Granted] = []
    for secret in secrets:
        ref = refs.get(secret)
        where = f"connector.{connector}: secret {secret}"
        if ref is None:
            raise GrantRefused(f"{where}: no SecretRef {secret} is applied")
        if connector not in ref.used_by.connectors:
            raise GrantRefused(
                f"{where}: not granted (secretref.{secret} usedBy.connectors does not name "
                f"{connector})",
                hint=f"add {connector} to spec.usedBy.connectors of SecretRef {secret}",
            )
        entry = how.get(secret)
        if entry is None:
            raise GrantRefused(
                f"{where}: its package does not declare this secret, so it says nowhere how "
                "to receive it (connector.yaml `secrets: [{name, env | file}]`)"
            )
        if str(entry.get("env") or "").upper() in RESERVED_ENV:
            raise GrantRefused(
                f"{where}: its package would receive it as {entry['env']}, a variable Cloned "
                "sets itself; it needs a name of its own"
            )
        if entry.get("env"):
            found.append(Granted(secret, vault_name(ref.ref), "env", str(entry["env"])))
        else:
            found.append(Granted(secret, vault_name(ref.ref), "file", str(entry["file"])))
    return tuple(found)


def read_grants(
    root: Path,
    connector: str,
    secrets: Sequence[str],
    declared: Sequence[Mapping[str, Any]],
    refs: Mapping[str, SecretRefSpec],
    *,
    workspace: str,
    workspace_spec: WorkspaceSpec,
    home: Path,
) -> Grants:
    """The secrets connector `connector` receives now, read from the vault; no grant asks
    no vault. `GrantRefused` or a `VaultError` (unreachable, missing, refused): not started."""
    wanted = granted(connector, secrets, declared, refs)
    if not wanted:
        return Grants()
    from reconciler.vault.select import open_vault

    vault = open_vault(root, workspace, workspace_spec, home=home)
    env: dict[str, str] = {}
    files: dict[str, str] = {}
    for grant in wanted:
        value = vault.get(grant.vault_name).value
        (env if grant.delivery == "env" else files)[grant.target] = value
    return Grants(wanted, vault.provider, env, files)


def read_applied_grants(
    root: Path, db: StateDB, connector: str, state: Mapping[str, Any]
) -> Grants:
    """`read_grants` for the applied Connector state `state`, with the Workspace and the
    SecretRefs applied in `db` (apply's tool listing: it reads the database, not a view)."""
    import json

    from reconciler.home import cloned_home
    from reconciler.load.typed import applied_model
    from reconciler.model.workspace import Workspace
    from reconciler.state import resources as rows

    source = "the applied state (state database)"
    spec = state.get("spec") or {}
    secrets = list(spec.get("secrets") or [])
    if not secrets:
        return Grants()
    (workspace_row,) = rows.of_kind(db, "Workspace")
    workspace = applied_model(
        "Workspace", workspace_row.name, json.loads(workspace_row.state), source=source
    )
    assert isinstance(workspace, Workspace)
    refs: dict[str, SecretRefSpec] = {}
    for row in rows.of_kind(db, "SecretRef"):
        model = applied_model("SecretRef", row.name, json.loads(row.state), source=source)
        refs[row.name] = model.spec
    declared = ((state.get("package") or {}).get("declared") or {}).get("secrets") or []
    return read_grants(
        root,
        connector,
        secrets,
        declared,
        refs,
        workspace=workspace.metadata.name,
        workspace_spec=workspace.spec,
        home=cloned_home(),
    )
