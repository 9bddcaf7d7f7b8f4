"""launch_of: an applied connector's Launch is its re-verified command with a scrubbed
environment, and the supervisor starts it and lists its tools (discover, as apply will)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from reconciler.packages.refusal import PackageRefused
from reconciler.redact import Redactor
from reconciler.runtime.discovery import discover
from reconciler.runtime.launch import launch_of
from reconciler.runtime.types import Launch, Settings
from reconciler.state import installs
from reconciler.state.db import StateDB
from tests.conftest import cloned, commit_all, copy_quickstart, write


def launch_for(repo: Path, name: str) -> Launch:
    with StateDB.existing(repo) as db:
        assert db is not None
        record = installs.all_installs(db)[f"connector.{name}"].record
    state = json.loads((repo / ".cloned" / "cloned.lock").read_text())["resources"]
    return launch_of(repo, name, state[f"connector.{name}"]["state"]["package"], record)


def test_an_applied_connector_starts_with_only_its_own_environment(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_quickstart(repo)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "quickstart")
    result = cloned("apply", cwd=repo)
    assert result.code == 0, result.out + result.err
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not_for_connectors")
    launch = launch_for(repo, "notes")
    data = str(repo / ".cloned" / "state" / "connectors" / "notes" / "data")
    assert dict(launch.env) == {  # no CLONED_HOME, no user HOME, no token of the caller's
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": data,
        "CLONED_CONNECTOR_DATA": data,
    }
    assert launch.log == repo / ".cloned" / "state" / "logs" / "connectors" / "notes.log"
    tools = discover(launch, settings=Settings(terminate_grace=0.5), redactor=Redactor())
    assert [tool["name"] for tool in tools] == ["add_note", "list_notes", "read_note"]
    server = launch.cwd / "server.py"
    os.chmod(server, stat.S_IRUSR | stat.S_IWUSR)
    server.write_text(server.read_text() + "\n# changed\n")
    with pytest.raises(PackageRefused):
        launch_for(repo, "notes")
