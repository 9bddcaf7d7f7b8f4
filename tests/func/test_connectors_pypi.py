"""PyPI connectors through apply: `mcp-server-time` from its hash lock into its own
environment (from the local wheelhouse), started and spoken to; a wrong hash refused at
install; and a folder package whose manifest names a hash-locked requirements file gets an
environment of its own the same way."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reconciler.packages.startable import startable
from reconciler.state import installs
from reconciler.state.db import StateDB
from tests.conftest import commit_all, write
from tests.fakes.tiny_mcp import server_source
from tests.func.engine_helpers import Team, make_team
from tests.func.registry_helpers import events
from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION, pip_settings, wheel

TIME = f"""\
apiVersion: cloned/v1
kind: Connector
metadata: {{name: time}}
spec:
  source: {{pypi: {{package: {TIME_PACKAGE}, lock: locks/time.txt}}}}
  version: {TIME_VERSION}
  publisher: modelcontextprotocol
"""


@pytest.fixture
def pip(tmp_path: Path) -> dict[str, str]:
    return pip_settings(tmp_path / "pip")


def team_with(repo: Path, tmp_path: Path, rel: str, text: str) -> Team:
    team = make_team(repo, tmp_path)
    write(repo, rel, text)
    write(repo, ".gitignore", ".cloned/state/\n")
    return team


def start_of(repo: Path, name: str):  # type: ignore[no-untyped-def]
    with StateDB.existing(repo) as db:
        assert db is not None
        record = installs.all_installs(db)[f"connector.{name}"].record
    lock = json.loads((repo / ".cloned" / "cloned.lock").read_text())
    package = lock["resources"][f"connector.{name}"]["state"]["package"]
    return startable(repo, name, package, record)


def converse(
    command: tuple[str, ...], cwd: Path, messages: list[dict[str, object]]
) -> dict[object, dict[str, object]]:
    """Send each message in turn, waiting for the answer to each request before the next (a
    server may stop at end of input before it answers what is still queued)."""
    proc = subprocess.Popen(
        list(command), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    replies: dict[object, dict[str, object]] = {}
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            while "id" in message and message["id"] not in replies:
                line = proc.stdout.readline()
                assert line, "the server stopped before it answered"
                reply = json.loads(line)
                replies[reply.get("id")] = reply
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return replies


def test_mcp_server_time_installs_from_its_lock_and_answers_over_stdio(
    repo: Path, tmp_path: Path, pip: dict[str, str]
) -> None:
    team = team_with(repo, tmp_path, ".cloned/connectors.yaml", TIME)
    assert team.run("connectors", "lock", "time", env=pip).code == 0
    commit_all(repo, "time connector")
    applied = team.run("apply", env=pip)
    assert applied.code == 0, applied.out + applied.err
    start = start_of(repo, "time")
    assert start.command[0].endswith("/bin/mcp-server-time")
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    replies = converse(start.command, start.cwd, messages)
    tools = {tool["name"] for tool in replies[2]["result"]["tools"]}
    assert {"get_current_time", "convert_time"} <= tools
    assert team.run("plan", "--detailed-exitcode", env=pip).code == 0


def test_a_wrong_hash_in_the_lock_is_refused_at_install(
    repo: Path, tmp_path: Path, pip: dict[str, str]
) -> None:
    team = team_with(repo, tmp_path, ".cloned/connectors.yaml", TIME)
    assert team.run("connectors", "lock", "time", env=pip).code == 0
    lock = repo / ".cloned" / "locks" / "time.txt"
    lines = lock.read_text().splitlines()
    index = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("sniffio==") or line.startswith("idna==")
    )
    head, _, _ = lines[index].partition("--hash=sha256:")
    lines[index] = head + "--hash=sha256:" + "0" * 64
    lock.write_text("\n".join(lines) + "\n")
    commit_all(repo, "time connector, tampered lock")
    applied = team.run("apply", env=pip)
    assert applied.code == 1, applied.out
    (refusal,) = events(team, "connector.refused")
    assert refusal["payload"]["reason"] == "hash-mismatch"  # type: ignore[index]
    assert not list((repo / ".cloned" / "state" / "envs").glob("*/bin"))


REQUIRES = """\
name: zones
version: 0.1.0
publisher: team
run: {command: [python, server.py]}
tools: [zones]
requirements: requirements.txt
"""


def test_a_folder_package_with_requirements_runs_in_its_own_environment(
    repo: Path, tmp_path: Path, pip: dict[str, str]
) -> None:
    import hashlib

    tzdata = wheel("tzdata")
    version = tzdata.name.split("-")[1]
    sha = hashlib.sha256(tzdata.read_bytes()).hexdigest()
    connector = (
        "apiVersion: cloned/v1\nkind: Connector\nmetadata: {name: zones}\nspec:\n"
        "  source: {path: tools/zones}\n  version: 0.1.0\n  publisher: team\n"
    )
    team = team_with(repo, tmp_path, ".cloned/zones.yaml", connector)
    write(repo, "tools/zones/connector.yaml", REQUIRES)
    # It imports tzdata from its own environment, then serves its tools.
    write(repo, "tools/zones/server.py", "import tzdata\n" + server_source(["zones"]))
    write(repo, "tools/zones/requirements.txt", f"tzdata=={version} --hash=sha256:{sha}\n")
    commit_all(repo, "zones connector")
    applied = team.run("apply", env=pip)
    assert applied.code == 0, applied.out + applied.err
    start = start_of(repo, "zones")
    assert start.command[0].startswith(str(repo / ".cloned" / "state" / "envs"))
    probe = subprocess.run(
        [start.command[0], "-c", "import tzdata; print(tzdata.IANA_VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip()
