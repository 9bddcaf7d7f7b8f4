"""Load: what the runtime starts for an installed connector, verified again first.

`startable` re-hashes the installed files (the store entry and any environment) against the
install record, and only then says how to start the connector: its command with `python`
made concrete, the folder to start it in and its private data folder. A connector with its
own environment runs that environment's interpreter; one without runs the Python that runs
Cloned in isolated mode without site-packages (`-I -S`), so it sees the standard library and
nothing that Cloned itself installed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.packages.install import data_folder, store_of, verify
from reconciler.packages.refusal import PackageRefused

DATA_ENV = "CLONED_CONNECTOR_DATA"
"""The environment variable that names a connector's own data folder."""


@dataclass(frozen=True)
class Startable:
    """How to start one verified connector (over stdio)."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    data: Path

    def environment(self) -> dict[str, str]:
        """The variables Cloned itself gives the connector (the sandbox adds the rest)."""
        return {DATA_ENV: str(self.data)}


def startable(
    root: Path, name: str, package: Mapping[str, Any], install: Mapping[str, Any]
) -> Startable:
    """Connector `name` ready to start, from its applied `package` pin and install record;
    `PackageRefused("tree-changed")` naming the differences when the installed files are not
    what was installed."""
    problems = verify(root, install)
    if problems:
        raise PackageRefused(
            "tree-changed",
            f"connector.{name}: the installed files differ from what was installed "
            f"({'; '.join(problems[:5])}); not started",
            hint="`cloned connectors verify` lists them; apply again to reinstall",
        )
    data = data_folder(root, name)
    command = [str(part) for part in package["declared"]["run"]["command"]]
    env = install.get("env")
    python = Path(root / env["path"] / "bin" / "python") if isinstance(env, dict) else None
    if package["source"] == "pypi":
        assert python is not None
        script = root / env["path"] / "bin" / command[0]  # type: ignore[index]
        return Startable(name, (str(script), *command[1:]), data, data)
    tree = install.get("tree")
    folder = store_of(root).path(str(tree))
    if folder is None:  # verify found it; a concurrent removal is still a refusal
        raise PackageRefused("tree-changed", f"connector.{name}: its package left the store")
    if command[0] == "python":
        interpreter = [str(python)] if python is not None else [sys.executable, "-I", "-S"]
        command = [*interpreter, *command[1:]]
    return Startable(name, tuple(command), folder, data)
