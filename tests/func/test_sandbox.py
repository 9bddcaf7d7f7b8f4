"""Connectors run inside the bubblewrap sandbox: a real probe connector (tests/fakes/probe_mcp.py),
applied for real and called through the governed path, cannot read the user's ~/.ssh,
`$CLONED_HOME` or the repository's state, cannot write outside its data folder, cannot reach a
loopback service of the host, and sees only its scrubbed environment. Its only way out is its
egress proxy: the one loopback site its YAML allows answers, every other target (another host
service, the metadata address, an IPv6 form, a redirect elsewhere) is refused, and each
connection is audited. Without bubblewrap, `strict` refuses to start it and `standard` starts
it, audited and shown as unsandboxed, with the proxy variables only."""

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
from tests.fakes.site import serve
from tests.func.engine_helpers import Team, make_team
from tests.func.governed_helpers import events, real_calls

if os.environ.get("SANDBOX_TESTS") == "required":  # .ci/run: CI never skips these
    assert isolation().available, isolation().reason
pytestmark = pytest.mark.skipif(
    not isolation().available,
    reason=f"bubblewrap cannot isolate here ({isolation().reason}); .ci/run installs it",
)
MISSING = "/nonexistent/bwrap"
SCRUBBED = ["CLONED_CONNECTOR_DATA", "HOME", "LANG", "PATH"]
PROXY_VARS = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]


@dataclass
class Probed:
    team: Team
    home: Path  # the fake user HOME with ~/.ssh/id_ed25519

    @property
    def repo(self) -> Path:
        return self.team.repo

    def data(self) -> Path:
        return self.repo / ".cloned" / "state" / "connectors" / "probe" / "data"


OTHER = serve()  # a service of this machine the probe's YAML does not name
SITE = serve(away=f"http://127.0.0.1:{OTHER}/hello")
HOSTS = (f"127.0.0.1:{SITE}", "169.254.169.254:80")  # the metadata address, named: still refused


def probe_yaml(profile: str | None = None) -> str:
    return connector_yaml(profile, HOSTS)


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
        write(repo, ".cloned/probe.yaml", probe_yaml(profile))
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
    # (runtime/: the mount point of its own egress proxy's folder).
    assert listed_state["value"] == ["connectors", "runtime", "store"]
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
    # bwrap sets PWD to the folder it changed into (the store entry), the forwarder the proxy
    # variables; nothing else is added.
    assert env["value"] == sorted([*SCRUBBED, "PWD", *PROXY_VARS])


def test_the_allowed_site_answers_through_the_proxy_and_the_connection_is_audited(
    probed: Probed,
) -> None:
    (fetched,) = probes(probed.repo, {"fetch": f"http://127.0.0.1:{SITE}/hello"})
    assert fetched["value"] == {"status": 200, "body": "hello from the allowed site"}
    (event,) = events(probed.repo, "egress.connection")
    assert event["subject"] == "connector.probe"
    payload = event["payload"]
    assert (payload["decision"], payload["host"], payload["port"]) == ("allowed", "127.0.0.1", SITE)
    assert payload["address"] == "127.0.0.1" and payload["method"] == "GET"
    assert payload["rule"] == f"connector probe spec.egress.allowHosts: 127.0.0.1:{SITE}"
    assert payload["bytes_up"] > 0 and payload["bytes_down"] > len("hello from the allowed site")


def test_every_other_way_out_is_refused_and_audited(probed: Probed) -> None:
    other, metadata, mapped, redirected, tls, direct = probes(
        probed.repo,
        {"fetch": f"http://127.0.0.1:{OTHER}/hello"},  # another service of this machine
        {"fetch": "http://169.254.169.254/latest/meta-data/"},  # named in its YAML, even so
        {"fetch": f"http://[::ffff:127.0.0.1]:{SITE}/hello"},  # the allowed site, disguised
        {"fetch": f"http://127.0.0.1:{SITE}/away"},  # a redirect to OTHER, followed by urllib
        {"fetch": "https://example.org/"},  # a CONNECT tunnel to a host not allowed
        {"connect": ["127.0.0.1", SITE]},  # past the proxy: its namespace has loopback only
    )
    assert other["value"]["status"] == 403
    assert f"127.0.0.1:{OTHER} is not in any allow list" in other["value"]["body"]
    assert metadata["value"]["status"] == 403
    assert "cloud metadata" in metadata["value"]["body"]
    assert mapped["value"]["status"] == 403
    assert redirected["value"]["status"] == 403
    assert f"127.0.0.1:{OTHER} is not in any allow list" in redirected["value"]["body"]
    assert not tls["ok"] and "403" in tls["error"]
    assert not direct["ok"] and "Connection refused" in direct["error"]
    seen = [event["payload"] for event in events(probed.repo, "egress.connection")]
    refused = [(p["host"], p["port"]) for p in seen if p["decision"] == "refused"]
    assert sorted(refused) == sorted(
        [
            ("127.0.0.1", OTHER),
            ("169.254.169.254", 80),
            ("[::ffff:7f00:1]", SITE),  # as the proxy writes the host: canonical
            ("127.0.0.1", OTHER),  # the redirect's second hop
            ("example.org", 443),
        ]
    )
    # Refused before connecting: no refused connection sent a byte anywhere.
    assert [p["bytes_up"] for p in seen if p["decision"] == "refused"] == [0] * 5
    allowed = [p for p in seen if p["decision"] == "allowed"]
    assert [(p["port"], p["method"]) for p in allowed] == [(SITE, "GET")]  # the first hop


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
    # Still scrubbed, and given the proxy variables (all a standard fallback can do).
    assert second["value"] == sorted([*SCRUBBED, *PROXY_VARS])
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
    write(team.repo, ".cloned/probe.yaml", probe_yaml("none"))
    commit_all(team.repo, "probe: no sandbox")
    gated = team.run("apply")
    assert gated.code == 3, gated.out + gated.err
    assert "connector-widening" in team.run("plan").out
    write(team.repo, ".cloned/probe.yaml", probe_yaml("strict"))
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
