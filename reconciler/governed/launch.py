"""How the governed call path starts a connector: its `Launch`, from the applied package pin
and install record, re-verified first (`packages.startable`).

TEMPORARY (issue 11, brief C): `reconciler.runtime.launch.launch_of` is being written beside
the supervisor with this exact signature; at merge the lead replaces this module's use in
`governed/calls.py` with it and deletes this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.governed.applied import logs_dir
from reconciler.packages.startable import DATA_ENV, startable
from reconciler.runtime.types import Launch


def launch_of(
    root: Path, name: str, package: Mapping[str, Any], install: Mapping[str, Any]
) -> Launch:
    """How to start connector `name`: verified command and folder, and the whole environment
    it gets (PATH, LANG, HOME its data folder, CLONED_CONNECTOR_DATA), nothing else."""
    ready = startable(root, name, package, install)
    ready.data.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(ready.data),
        DATA_ENV: str(ready.data),
    }
    return Launch(name, ready.command, ready.cwd, env, logs_dir(root) / f"{name}.log")
