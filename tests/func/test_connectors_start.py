"""Load re-verifies: what the runtime would start for an installed connector is checked
against the install record first, and then really starts and speaks MCP over stdio."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from reconciler.packages.refusal import PackageRefused
from reconciler.packages.startable import startable
from reconciler.state import installs
from reconciler.state.db import StateDB


def start_of(repo: Path, name: str):  # type: ignore[no-untyped-def]
    with StateDB.existing(repo) as db:
        assert db is not None
        record = installs.all_installs(db)[f"connector.{name}"].record
    state = json.loads((repo / ".cloned" / "cloned.lock").read_text())["resources"]
    return startable(repo, name, state[f"connector.{name}"]["state"]["package"], record)


def speak(command: tuple[str, ...], cwd: Path, env: dict[str, str]) -> list[dict[str, object]]:
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    done = subprocess.run(
        list(command),
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("name", ["notes", "clock"])
def test_an_installed_connector_starts_from_its_verified_store_entry(
    applied: Path, name: str
) -> None:
    start = start_of(applied, name)
    assert start.cwd.is_relative_to(applied / ".cloned" / "state" / "store")
    assert start.command[1:3] == ("-I", "-S")  # no environment: the standard library only
    replies = speak(start.command, start.cwd, start.environment())
    tools = [tool["name"] for tool in replies[1]["result"]["tools"]]  # type: ignore[index]
    declared = {"notes": ["add_note", "list_notes", "read_note"], "clock": ["now", "convert"]}
    assert tools == declared[name]


def test_a_changed_file_in_the_store_is_refused_before_start(applied: Path) -> None:
    start = start_of(applied, "notes")
    server = start.cwd / "server.py"
    os.chmod(server, stat.S_IRUSR | stat.S_IWUSR)
    server.write_text(server.read_text() + "\nimport os; os.system('id')\n")
    with pytest.raises(PackageRefused) as refused:
        start_of(applied, "notes")
    assert refused.value.reason == "tree-changed"
    assert "changed: server.py" in refused.value.message


def test_the_quickstart_registry_stays_valid_for_years() -> None:
    """The bundled demo registry is committed: every signed metadata file must outlive any
    plausible checkout of this version (a real registry re-signs its timestamp daily)."""
    from tests.conftest import QUICKSTART

    folder = QUICKSTART / "vendor" / "registry" / "metadata"
    expiries = {
        path.name: json.loads(path.read_text())["signed"]["expires"]
        for path in folder.glob("*.json")
    }
    assert expiries and all(when >= "2035-01-01" for when in expiries.values()), expiries
