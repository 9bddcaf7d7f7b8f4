"""Attacks on the connector supply chain, as a hostile publisher, a hostile contributor or
someone with write access to the registry or the working tree would make them: each test
builds the attack through the real commands and asserts it is held (nothing unapproved or
unverified installed, one clear error, nothing written)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import commit_all, git, write
from tests.fakes.tiny_mcp import server_source
from tests.func.attack_helpers import (
    install_weather,
    leaky_release,
    republish,
    set_version,
    store_servers,
)
from tests.func.engine_helpers import TOKEN, Team
from tests.func.registry_helpers import (
    ECHO,
    MANIFEST_ECHO,
    Publisher,
    approve_pending,
    approve_until_applied,
    connector_yaml,
    make_publisher,
    weather_server,
    weather_team,
)
from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION, pip_settings


@pytest.fixture
def installed(repo: Path, tmp_path: Path) -> tuple[Team, Publisher]:
    return install_weather(repo, tmp_path)


def test_a_version_republished_after_its_approval_is_not_installed_on_that_approval(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    team, publisher = installed
    publisher.publish(tmp_path / "scratch", "1.1.0", tools="[forecast, alerts]")
    set_version(team, publisher, "1.1.0")
    assert team.run("apply").code == 3
    approve_pending(team)
    # The publisher signs other bytes under the same name and version after the approval.
    src = tmp_path / "evil"
    write(
        src, "connector.yaml", (tmp_path / "scratch" / "src-1.1.0" / "connector.yaml").read_text()
    )
    write(src, "server.py", server_source(["forecast", "alerts"], "# evil 1.1.0\n"))
    publisher.run("connectors", "pack", str(src), "--out", str(tmp_path / "evil.tar.gz"))
    republish(publisher, tmp_path / "evil.tar.gz", "acme/weather-1.1.0.tar.gz")
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert not any("evil" in text for text in store_servers(team.repo))
    # The registry really serves the other bytes: approved on their own, they install.
    approve_pending(team)
    assert approve_until_applied(team).code == 0
    assert store_servers(team.repo) == [server_source(["forecast", "alerts"], "# evil 1.1.0\n")]


def test_a_registry_repointed_in_the_same_change_as_an_upgrade_is_gated(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    team, _ = installed
    other = make_publisher(tmp_path / "other", team.repo / "reg2")
    other.publish(tmp_path / "other" / "scratch", "1.0.1")
    # Same publisher name and tools; another root of trust, slipped in beside a patch upgrade.
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(other, "1.0.1", url="file:reg2"))
    commit_all(team.repo, "weather 1.0.1")
    plan = team.run("plan")
    assert "baseline/registry-change" in plan.out, plan.out
    assert team.run("apply").code == 3
    assert store_servers(team.repo) == [weather_server("1.0.0")]


def test_a_folder_changed_after_its_approval_is_not_installed_on_that_approval(
    repo: Path, tmp_path: Path
) -> None:
    team = echo_team(repo, tmp_path)
    write(repo, "tools/echo/server.py", server_source(["echo"], "# v2\n"))
    commit_all(repo, "echo v2")
    assert team.run("apply").code == 3
    approve_pending(team)
    write(
        repo, "tools/echo/server.py", server_source(["echo"], "# evil\n")
    )  # after the review, before apply
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert server_source(["echo"], "# evil\n") not in echo_servers(repo)
    assert echo_servers(repo) == [server_source(["echo"], "# v1\n")]


def test_a_folder_that_links_outside_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    team = echo_team(repo, tmp_path)
    outside = tmp_path / "outside"
    shutil.copytree(repo / "tools" / "echo", outside)
    shutil.rmtree(repo / "tools" / "echo")
    os.symlink(outside, repo / "tools" / "echo")
    plan = team.run("plan")
    assert plan.code == 1, plan.out
    assert "tools/echo" in plan.err and "leaves the repository" in plan.err


def test_a_link_inside_a_folder_source_is_refused_at_plan(repo: Path, tmp_path: Path) -> None:
    team = echo_team(repo, tmp_path)
    secret = tmp_path / "id_ed25519"
    secret.write_text("private\n")
    os.symlink(secret, repo / "tools" / "echo" / "key")
    plan = team.run("plan")
    assert plan.code == 1, plan.out
    assert "unsafe-entry" in plan.err or "symlink" in plan.err
    assert all("private" not in text for text in echo_servers(repo))


def echo_team(repo: Path, tmp_path: Path) -> Team:
    """The weather team with a folder connector `echo` (tools/echo) applied at v1."""
    team, _ = weather_team(repo, tmp_path)
    write(repo, "tools/echo/connector.yaml", MANIFEST_ECHO)
    write(repo, "tools/echo/server.py", server_source(["echo"], "# v1\n"))
    write(repo, ".cloned/echo.yaml", ECHO)
    commit_all(repo, "echo connector")
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    return team


def echo_servers(repo: Path) -> list[str]:
    folder = repo / ".cloned" / "state" / "store" / "sha256"
    return [
        (entry / "server.py").read_text()
        for entry in sorted(folder.iterdir())
        if (entry / "connector.yaml").read_text().startswith("name: echo")
    ]


def test_a_secret_in_a_package_description_never_reaches_an_output(
    repo: Path, tmp_path: Path
) -> None:
    team, publisher = weather_team(repo, tmp_path)
    leaky_release(team, publisher, tmp_path)
    outputs = [team.run("plan"), team.run("plan", "--json"), team.run("plan", "--out", "p.json")]
    outputs += [team.run("show", "p.json"), team.run("apply")]
    outputs += [team.run("audit", "log", "--json"), team.run("approvals", "list", "--json")]
    assert outputs[-3].code == 0, outputs[-3].out + outputs[-3].err
    for result in outputs:
        assert TOKEN not in result.out + result.err
    assert "[REDACTED]" in outputs[1].out
    files = [repo / "p.json", repo / ".cloned" / "cloned.lock"]
    files += list((repo / ".cloned" / "audit").rglob("*"))
    for path in files:
        if path.is_file():
            assert TOKEN not in path.read_text(), path


TIME = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: time}
spec:
  source: {pypi: {package: mcp-server-time, lock: locks/time.txt}}
  version: 0.6.2
  publisher: pypi
"""


def test_a_pypi_lock_edited_after_its_approval_is_not_installed_on_that_approval(
    installed: tuple[Team, Publisher],
) -> None:
    team, _ = installed
    write(team.repo, ".cloned/locks/time.txt", f"mcp-server-time==0.6.2 --hash=sha256:{'a' * 64}\n")
    write(team.repo, ".cloned/time.yaml", TIME)
    commit_all(team.repo, "time connector")
    assert team.run("apply").code == 3
    approve_pending(team)
    # After the review, the lock gains a distribution nobody approved.
    write(
        team.repo,
        ".cloned/locks/time.txt",
        f"evil==1.0 --hash=sha256:{'b' * 64}\nmcp-server-time==0.6.2 --hash=sha256:{'a' * 64}\n",
    )
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert "connector.time (create) applied" not in applied.out
    assert "connector.time (create) awaiting approval" in applied.out
    assert "approves an earlier version of this change" in applied.err
    assert not (team.repo / ".cloned" / "state" / "envs").exists()


def plant_env(repo: Path, lock_text: str) -> Path:
    """What a hostile contributor commits beside a reviewed lock: a "completed" environment
    for that lock, with its own marker, holding a console script of their own."""
    from reconciler.canonical import canonical_json
    from reconciler.canonical import digest as canonical_digest
    from reconciler.packages.pypi import read_lock
    from reconciler.packages.pypi.env import MARKER, MARKER_FORMAT, hash_tree

    lock = read_lock(lock_text.encode(), "lock")
    env = repo / ".cloned" / "state" / "envs" / lock.digest.removeprefix("sha256:")[:32]
    write(env, "bin/mcp-server-time", "#!/bin/sh\necho planted\n")
    (env / "bin" / "mcp-server-time").chmod(0o755)
    files = hash_tree(env)
    marker = {"format": MARKER_FORMAT, "lock_digest": lock.digest, "files": files}
    marker["files_digest"] = canonical_digest(files)
    (env / MARKER).write_bytes(canonical_json(marker))
    return env


def test_an_environment_committed_beside_an_approved_lock_is_never_used(
    installed: tuple[Team, Publisher], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, _ = installed
    for key, value in pip_settings(tmp_path / "pip").items():
        monkeypatch.setenv(key, value)
    lock_text = f"{TIME_PACKAGE}=={TIME_VERSION} --hash=sha256:{'a' * 64}\n"
    write(team.repo, ".cloned/locks/time.txt", lock_text)
    write(team.repo, ".cloned/time.yaml", TIME.replace("0.6.2", TIME_VERSION))
    env = plant_env(team.repo, lock_text)
    commit_all(team.repo, "time connector")
    git("add", "-f", ".cloned/state/envs", cwd=team.repo)
    git("commit", "-qm", "and its environment", cwd=team.repo)
    # Committed state is refused outright...
    refused = team.run("apply")
    assert refused.code == 1
    assert "git tracks files in .cloned/state/" in refused.err
    assert "connector.time" not in refused.out
    # ...and a planted environment that is merely on disk is never trusted either.
    git("rm", "-rq", "--cached", ".cloned/state/envs", cwd=team.repo)
    git("commit", "-qm", "untrack it, keep the files", cwd=team.repo)
    assert (env / "bin" / "mcp-server-time").is_file()
    assert team.run("apply").code == 3
    approve_pending(team)  # the reviewer approves the lock they see in the plan
    applied = team.run("apply")
    assert "connector.time (create) applied" not in applied.out, applied.out
    assert applied.code == 1, applied.out + applied.err
    # Rebuilt from the lock instead: pip checks the one real wheel against the approved hash.
    assert "does not match the hash in the lock" in applied.out
    assert not (env / "bin" / "mcp-server-time").exists()


@pytest.mark.parametrize("how", ["dotdot", "symlink"])
def test_a_file_registry_outside_the_repository_is_refused(
    repo: Path, tmp_path: Path, how: str
) -> None:
    team, publisher = weather_team(repo, tmp_path)
    outside = tmp_path / "outside-reg"
    shutil.move(publisher.folder, outside)
    if how == "symlink":
        os.symlink(outside, repo / "reg")
        url = "file:reg"
    else:
        url = "file:../outside-reg"
    write(repo, ".cloned/connectors.yaml", connector_yaml(publisher, url=url))
    commit_all(repo, "registry elsewhere")
    plan = team.run("plan")
    assert plan.code == 1, plan.out
    assert f"registry url {url}: a file: registry must be inside the repository" in plan.err
    assert not (repo / ".cloned" / "state" / "store").exists()
