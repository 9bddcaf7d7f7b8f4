"""How the runtime starts an installed connector: its verified command (packages.startable,
which re-hashes the installed files first) and a scrubbed environment.

The process gets a fixed PATH and locale, its own data folder as HOME and as
`CLONED_CONNECTOR_DATA`, and nothing else of Cloned's environment: no CLONED_HOME, no user
HOME, no secrets (those the vault grants are added by the caller, per connector).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.packages.startable import DATA_ENV, startable
from reconciler.runtime.types import Launch

PATH = "/usr/local/bin:/usr/bin:/bin"


def logs_dir(root: Path) -> Path:
    """Where each connector's stderr log is kept (`.cloned/state/logs/connectors/NAME.log`)."""
    return root / ".cloned" / "state" / "logs" / "connectors"


def launch_of(
    root: Path, name: str, package: Mapping[str, Any], install: Mapping[str, Any]
) -> Launch:
    """Connector `name`'s Launch; `PackageRefused` when its installed files changed."""
    ready = startable(root, name, package, install)
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": str(ready.data), DATA_ENV: str(ready.data)}
    return Launch(
        name=name,
        command=ready.command,
        cwd=ready.cwd,
        env=env,
        log=logs_dir(root) / f"{name}.log",
    )
