"""Connectors run inside the bubblewrap sandbox: a real probe connector (tests/fakes/probe_mcp.py),
applied for real and called through the governed path, cannot read the user's ~/.ssh,
`$CLONED_HOME` or the repository's state, cannot write outside its data folder, cannot reach a
loopback service of the host, and sees only its scrubbed environment. Without bubblewrap,
`strict` refuses to start it and `standard` starts it, audited and shown as unsandboxed."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.egress.sandbox import BWRAP_ENV, isolation
from reconciler.governed.calls import CallOutcome, CallRequest
from tests.conftest import commit_all, write
from tests.fakes.probe_mcp import MANIFEST, SERVER, connector_yaml
from tests.func.engine_helpers import Team, make_team
from tests.func.governed_helpers import events, real_calls

if os.environ.get("SANDBOX_TESTS") == "required":  # .ci/run: CI never skips these
    assert isolation().available, isolation().reason
pytestmark = pytest.mark.skipif(
    not isolation().available,
    reason=f"bubblewrap cannot isolate here ({isolation().reason}); .ci/run installs it",
)
MISSING = "/nonexistent/bwrap"


@dataclass
class Probed:
    team: Team
    home: Path  # the fake user HOME with ~/.ssh/id_ed25519

    @property
    def repo(self) -> Path:
        return self.team.repo

    def data(self) -> Path:
        return self.repo / ".cloned" / "state" / "connectors" / "probe" / "data"


_BUILT: dict[str, Team] = {}


def probe_team(tmp_path: Path, profile: str | None = None) -> Team:
    """The applied probe workspace (built once per profile and test process), copied."""
    key = profile or "default"
    if key not in _BUILT:
        base = tmp_path.parent / f"sandbox-{key}"
        repo = base / "repo"
        repo.mkdir(parents=True)
        from tests.conftest import git

        git("init", "-q", "-b", "main", cwd=repo)
        team = make_team(repo, base)
        write(repo, "tools/probe/connector.yaml", MANIFEST)
        write(repo, "tools/probe/server.py", SERVER)
        write(repo, ".cloned/probe.yaml", connector_yaml(profile))
        write(repo, ".gitignore", ".cloned/state/\n")
        commit_all(repo, "probe connector")
        applied = team.run("apply")
        assert applied.code == 0, applied.out + applied.err
        _BUILT[key] = team
    source = _BUILT[key]
    target = tmp_path / "ws"
    shutil.copytree(source.repo.parent, target, symlinks=True)
    homes = {name: target / path.name for name, path in source.homes.items()}
    return Team(target / "repo", homes, source.keys)


@pytest.fixture
def probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probed]:
    team = probe_team(tmp_path)
    home = tmp_path / "user-home"
    write(home, ".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY----- not for connectors\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLONED_HOME", str(team.homes["alice"]))
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not_for_connectors")
    yield Probed(team, home)


def probes(repo: Path, *tries: dict[str, Any]) -> list[dict[str, Any]]:
    """Each try's answer from one probe process: {"ok", "value"} or {"ok": False, "error"}."""
    outcomes = real_calls(repo, *(CallRequest("probe", "probe", dict(t)) for t in tries))
    return [answer(outcome) for outcome in outcomes]


def answer(outcome: CallOutcome) -> dict[str, Any]:
    assert outcome.decision == "allowed", outcome.reason
    return json.loads(outcome.content[0]["text"])  # type: ignore[no-any-return]


def test_a_sandboxed_connector_sees_nothing_of_the_user_cloned_or_the_repository(
    probed: Probed,
) -> None:
    keys = probed.team.homes["alice"] / "keys"
    key_file = next(path for path in keys.rglob("*") if path.is_file())
    state = probed.repo / ".cloned" / "state"
    ssh, cloned_keys, db, listed_state, listed_home, run = probes(
        probed.repo,
        {"read": str(probed.home / ".ssh" / "id_ed25519")},
        {"read": str(key_file)},
        {"read": str(state / "cloned.db")},
        {"list": str(state)},
        {"list": str(probed.home)},
        {"list": "/run"},  # Unix sockets (Docker, D-Bus, agents) answer on read-only mounts
    )
    assert not ssh["ok"] and "No such file" in ssh["error"]
    assert not cloned_keys["ok"] and "No such file" in cloned_keys["error"]
    assert not db["ok"] and "No such file" in db["error"]
    # Only the mount points of what is bound back: no database, logs, lock or YAML.
    assert listed_state["value"] == ["connectors", "store"]
    assert listed_home["value"] == []
    assert run["value"] == []


def test_it_writes_only_its_data_folder_and_reaches_no_host_service(probed: Probed) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        inside, repo_root, user_home, connected = probes(
            probed.repo,
            {"write": str(probed.data() / "out.txt")},
            {"write": str(probed.repo / "escaped.txt")},
            {"write": str(probed.home / "escaped.txt")},
            {"connect": ["127.0.0.1", port]},
        )
    finally:
        server.close()
    assert inside == {"ok": True, "value": "written"}
    assert (probed.data() / "out.txt").read_text() == "written by the probe"
    assert not repo_root["ok"] and "Read-only file system" in repo_root["error"]
    assert not user_home["ok"] and "Read-only file system" in user_home["error"]
    assert not (probed.repo / "escaped.txt").exists()
    assert not (probed.home / "escaped.txt").exists()
    assert not connected["ok"] and "Connection refused" in connected["error"]


def test_it_sees_only_its_scrubbed_environment(probed: Probed) -> None:
    (env,) = probes(probed.repo, {"env": True})
    # bwrap sets PWD to the folder it changed into (the store entry); nothing else is added.
    assert env["value"] == ["CLONED_CONNECTOR_DATA", "HOME", "LANG", "PATH", "PWD"]


def test_connectors_show_states_the_isolation(probed: Probed) -> None:
    shown = probed.team.run("connectors", "show", "probe")
    assert shown.code == 0, shown.err
    assert "isolation: bubblewrap" in shown.out
    as_json = json.loads(probed.team.run("connectors", "show", "probe", "--json").out)
    assert as_json["isolation"]["profile"] == "standard"
    assert as_json["isolation"]["sandboxed"] is True
    missing = probed.team.run("connectors", "show", "probe", env={BWRAP_ENV: MISSING})
    assert f"isolation: none (bubblewrap not found at {MISSING}" in missing.out


def test_standard_without_bubblewrap_runs_unsandboxed_audited_and_planned_loudly(
    probed: Probed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BWRAP_ENV, MISSING)
    first, second = probes(
        probed.repo,
        {"read": str(probed.home / ".ssh" / "id_ed25519")},
        {"env": True},
    )
    assert first["ok"]  # no isolation: exactly what the warnings say
    assert second["value"] == ["CLONED_CONNECTOR_DATA", "HOME", "LANG", "PATH"]  # still scrubbed
    (event,) = events(probed.repo, "connector.unsandboxed")  # one per process started
    assert event["subject"] == "connector.probe"
    assert event["payload"]["profile"] == "standard"
    assert MISSING in event["payload"]["reason"]
    plan = probed.team.run("plan")
    assert "Warning: connector.probe runs unsandboxed" in plan.err


def test_strict_without_bubblewrap_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = probe_team(tmp_path, "strict")
    assert json.loads(team.run("connectors", "show", "probe", "--json").out)["isolation"][
        "sandboxed"
    ]
    monkeypatch.setenv(BWRAP_ENV, MISSING)
    (outcome,) = real_calls(team.repo, CallRequest("probe", "probe", {"env": True}))
    assert outcome.decision == "refused"
    assert outcome.rule == "connector.probe sandbox"
    assert "sandbox.profile strict needs bubblewrap" in str(outcome.reason)
    assert MISSING in str(outcome.reason)
    assert events(team.repo, "connector.unsandboxed") == []
    plan = team.run("plan")
    assert "Warning: connector.probe will not start" in plan.err


def test_opting_out_with_profile_none_needs_an_approval(tmp_path: Path) -> None:
    team = probe_team(tmp_path)
    write(team.repo, ".cloned/probe.yaml", connector_yaml("none"))
    commit_all(team.repo, "probe: no sandbox")
    gated = team.run("apply")
    assert gated.code == 3, gated.out + gated.err
    assert "connector-widening" in team.run("plan").out
    write(team.repo, ".cloned/probe.yaml", connector_yaml("strict"))
    commit_all(team.repo, "probe: strict")
    assert team.run("apply").code == 0  # a stricter sandbox applies by itself


def test_the_sandboxed_server_stays_in_the_process_group_cloned_stops(tmp_path: Path) -> None:
    """The server and everything it forks inside bwrap are members of the process group the
    supervisor signals and the reaper tracks, so stopping the connector waits until all of
    them are gone (bwrap's --new-session would move them out of it)."""
    import anyio

    from reconciler.egress.sandbox import wrap
    from reconciler.runtime.process import spawn, stop
    from reconciler.runtime.reaper import group_members
    from reconciler.runtime.types import Launch

    repo, data = tmp_path / "repo", tmp_path / "repo" / "data"
    data.mkdir(parents=True)
    script = "trap '' TERM; sleep 30 & echo ready; while :; do sleep 0.02; done"
    plain = Launch("t", ("/bin/sh", "-c", script), data, {"HOME": str(data)}, tmp_path / "log")
    common = {"root": repo, "cloned_home": tmp_path / "c", "user_home": None}
    launch = wrap(plain, profile="strict", name="t", writable=[data], readable=[], **common)

    async def run() -> tuple[list[int], list[int]]:
        process = await spawn(launch)
        assert process.stdout is not None
        assert await process.stdout.receive() == b"ready\n"
        members = group_members(process.pid)
        await stop(process, grace=0.2)  # it ignores stdin and SIGTERM: SIGKILL ends it
        return members, [pid for pid in members if _alive(pid)]

    members, left = anyio.run(run)
    assert len(members) >= 4  # bwrap, its init in the PID namespace, the shell, its sleep
    assert left == []


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"
