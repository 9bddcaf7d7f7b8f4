"""How an applied Connector starts: the one function every start builds its Launch with.

Apply's tool listing (engine.listing), the governed call path (governed.calls: `cloned
connectors call` and `cloned gateway`) and `plan --refresh` all call `start_of`: the runtime's
re-verified, scrubbed Launch (runtime.launch) put inside the connector's sandbox
(egress.sandbox) as its `spec.sandbox.profile` says. The runtime and egress know nothing of
each other; this is the lowest layer that sees both, and an applied Connector's spec is
Connector knowledge (docs/architecture.md, "Where the sandbox is applied").
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.egress.sandbox import Confinement, Profile, confinement, wrap
from reconciler.home import cloned_home
from reconciler.model.kinds import Sandbox
from reconciler.packages.install import data_folder, store_of
from reconciler.runtime.launch import launch_of
from reconciler.runtime.types import Launch


@dataclass(frozen=True)
class Start:
    """A connector's Launch (inside bwrap when sandboxed) and how it is confined."""

    launch: Launch
    confinement: Confinement


def profile_of(spec: Mapping[str, Any] | None) -> Profile:
    """The `spec.sandbox.profile` of an applied Connector's spec (`standard` when unset)."""
    return Sandbox.model_validate((spec or {}).get("sandbox") or {}).profile


def start_of(
    root: Path,
    name: str,
    package: Mapping[str, Any],
    install: Mapping[str, Any],
    profile: Profile,
) -> Start:
    """Connector `name`'s Launch, re-verified and confined; `PackageRefused` when its
    installed files changed, `SandboxRefused` when `strict` cannot be honoured here."""
    confined = confinement(profile, name=name)
    launch = launch_of(root, name, package, install)
    if not confined.sandboxed:
        return Start(launch, confined)
    data = data_folder(root, name)
    data.mkdir(parents=True, exist_ok=True)
    wrapped = wrap(
        launch,
        profile=profile,
        name=name,
        root=root,
        cloned_home=cloned_home(),
        user_home=_user_home(),
        writable=[data],
        readable=_needed(root, install),
    )
    return Start(wrapped, confined)


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
