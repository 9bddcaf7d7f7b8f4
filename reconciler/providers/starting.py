"""How an applied Connector starts: the one function every start builds its Launch with.

Apply's tool listing (engine.listing), the governed call path (governed.calls: `cloned
connectors call` and `cloned gateway`) and `plan --refresh` all call `start_of`: the runtime's
re-verified, scrubbed Launch (runtime.launch) put inside the connector's sandbox
(egress.sandbox) as its `spec.sandbox.profile` says. The runtime and egress know nothing of
each other; this is the lowest layer that sees both, and an applied Connector's spec is
Connector knowledge (docs/architecture.md, "Where the sandbox is applied").
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.egress.forwarder import SCRIPT as FORWARDER
from reconciler.egress.forwarder import forwarder_command
from reconciler.egress.sandbox import Confinement, SandboxRefused, confinement, wrap
from reconciler.home import cloned_home
from reconciler.model.kinds import Sandbox
from reconciler.packages.install import data_folder, store_of
from reconciler.providers.grants import Grants
from reconciler.runtime.launch import launch_of
from reconciler.runtime.types import Launch


@dataclass(frozen=True)
class Start:
    """A connector's Launch (inside bwrap when sandboxed) and how it is confined."""

    launch: Launch
    confinement: Confinement
    grants: Grants | None = None
    """The secrets this start hands the connector (None: none were asked for)."""


def sandbox_of(spec: Mapping[str, Any] | None) -> Sandbox:
    """The `spec.sandbox` of an applied Connector's spec (profile `standard` when unset)."""
    return Sandbox.model_validate((spec or {}).get("sandbox") or {})


def start_of(
    root: Path,
    name: str,
    package: Mapping[str, Any],
    install: Mapping[str, Any],
    sandbox: Sandbox,
    *,
    proxy: Path | None = None,
    grants: Grants | None = None,
) -> Start:
    """Connector `name`'s Launch, re-verified and confined; `PackageRefused` when its
    installed files changed, `SandboxRefused` when `strict` cannot be honoured here or a
    `sandbox.paths` entry would expose what the sandbox hides.

    With `proxy` (the socket of the connector's running egress proxy, `egress.pool`), the
    connector reaches the network only through it: its command runs behind the forwarder
    (`egress.forwarder`), which listens on 127.0.0.1 and sets `HTTP(S)_PROXY` to itself. Inside
    the sandbox that is the only way out (its network namespace has loopback only, and the
    proxy's folder is bound in read-only); without isolation (`standard` where bubblewrap is
    missing) the variables are all there is, and a connector that ignores them is not stopped.
    Profile `none` gets no proxy. Without `proxy` a sandboxed connector has no network at all
    (apply's tool listing: its tools are not approved yet).

    `grants` (`providers.grants.read_grants`) adds the connector's granted secrets: variables
    to its environment, files to its data folder (written now, 0600)."""
    confined = confinement(sandbox.profile, name=name)
    launch = launch_of(root, name, package, install)
    if grants is not None and (grants.env or grants.files):
        grants.write_files(data_folder(root, name))
        launch = dataclasses.replace(launch, env={**launch.env, **grants.env})
    behind = proxy is not None and sandbox.profile != "none"
    if behind:
        assert proxy is not None
        command = forwarder_command(proxy, 0, then=launch.command)
        launch = dataclasses.replace(launch, command=tuple(command))
    if not confined.sandboxed:
        return Start(launch, confined, grants)
    data = data_folder(root, name)
    data.mkdir(parents=True, exist_ok=True)
    home, config = _user_home(), cloned_home()
    readable, writable = _granted(name, sandbox, root=root, home=home, config=config)
    if behind:
        assert proxy is not None
        readable += [proxy.parent, Path(FORWARDER)]
    wrapped = wrap(
        launch,
        profile=sandbox.profile,
        name=name,
        root=root,
        cloned_home=config,
        user_home=home,
        writable=[data, *writable],
        readable=[*_needed(root, install), *readable],
    )
    return Start(wrapped, confined, grants)


def _granted(
    name: str, sandbox: Sandbox, *, root: Path, home: Path | None, config: Path
) -> tuple[list[Path], list[Path]]:
    """The `sandbox.paths` (read-only, read-write) after checking each: it exists, and it is
    not `/`, the user's HOME or above it, nor in or around `$CLONED_HOME` or `.cloned/`."""
    readable: list[Path] = []
    writable: list[Path] = []
    guarded = [Path(os.path.realpath(p)) for p in (config, root / ".cloned")]
    top = Path(os.path.realpath(home)) if home is not None else Path("/")
    for entry in sandbox.paths:
        raw = entry.path
        path = (home or Path("/")) / raw[2:] if raw.startswith("~/") else Path(raw)
        real = Path(os.path.realpath(path))
        problem = None
        if not real.is_dir():
            problem = "is not a folder here"
        elif real == top or real in top.parents:
            problem = "would show the whole of the user's HOME"
        elif any(real == g or g in real.parents or real in g.parents for g in guarded):
            problem = "would show $CLONED_HOME or the repository's .cloned/ folder"
        if problem is not None:
            raise SandboxRefused(f"connector.{name}: sandbox.paths {raw}: {problem}; not started")
        (writable if entry.write else readable).append(real)
    return readable, writable


def _needed(root: Path, install: Mapping[str, Any]) -> list[Path]:
    """What the connector reads: its store entry and environment, and the Python it runs on
    (bound back only when it lies in a hidden tree, e.g. a pipx install under HOME)."""
    needed = [Path(sys.prefix), Path(sys.base_prefix)]
    tree = install.get("tree")
    entry = store_of(root).path(str(tree)) if tree else None
    if entry is not None:
        needed.append(entry)
    env = install.get("env")
    if isinstance(env, dict):
        needed.append(root / str(env["path"]))
    return needed


def _user_home() -> Path | None:
    try:
        return Path.home()
    except (RuntimeError, KeyError):  # no HOME and no password entry: nothing to hide
        return None
