"""How a connector is started: its verified install made into a `Launch` with a scrubbed
environment. Nothing of Cloned's own environment reaches a connector (no CLONED_HOME, no user
HOME, no tokens): only a fixed PATH, the locale, and its own data folder, which is also its HOME.
The sandbox (egress issue) and granted secrets (vault issue) add to this, never Cloned's env.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.packages.startable import DATA_ENV, startable
from reconciler.runtime.types import Launch

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
LOGS = Path(".cloned") / "state" / "logs" / "connectors"


def log_path(root: Path, name: str) -> Path:
    """Connector `name`'s stderr log."""
    return root / LOGS / f"{name}.log"


def launch_of(
    root: Path, name: str, package: Mapping[str, Any], install: Mapping[str, Any]
) -> Launch:
    """Connector `name` ready to start: re-verified (`PackageRefused` when its files changed)."""
    ready = startable(root, name, package, install)
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "HOME": str(ready.data),
        DATA_ENV: str(ready.data),
    }
    return Launch(name, ready.command, ready.cwd, env, log_path(root, name))
