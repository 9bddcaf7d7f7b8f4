"""Killed while installing: a real `cloned apply` process is killed (SIGKILL, its whole process
group) while it downloads a package from a loopback registry that holds the download until
the kill. Nothing half-installed is ever used, and the next apply converges."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.packages.install import store_of
from tests.conftest import CLONED, NO_TERMINAL, commit_all, write
from tests.func.engine_helpers import Team
from tests.func.registry_helpers import (
    Publisher,
    approve_pending,
    approve_until_applied,
    connector_yaml,
    weather_team,
)


class Stalling:
    """Serves a registry folder on 127.0.0.1; while `hold` is set, a request for a package
    file waits (after setting `reached`) until the hold is released."""

    def __init__(self, folder: Path) -> None:
        self.hold = threading.Event()
        self.reached = threading.Event()
        self.release = threading.Event()
        stalling = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if stalling.hold.is_set() and "/targets/" in self.path:
                    stalling.reached.set()
                    stalling.release.wait(timeout=60)
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[tuple[Team, Publisher, Stalling]]:
    registry = tmp_path / "served"
    server = Stalling(registry)
    team, publisher = weather_team(repo, tmp_path, url=server.url)
    # The registry lives outside the repository, behind the server.
    os.rename(publisher.folder, registry)
    publisher = Publisher(publisher.home, registry, publisher.pin)
    commit_all(repo, "registry served over HTTP")
    try:
        yield team, publisher, server
    finally:
        server.close()


def kill_during_download(team: Team, server: Stalling) -> None:
    server.hold.set()
    env = {**os.environ, **NO_TERMINAL, "CLONED_HOME": str(team.homes["operator"])}
    proc = subprocess.Popen(
        [str(CLONED), "apply"],
        cwd=team.repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert server.reached.wait(timeout=60), "apply never asked for the package"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    server.hold.clear()
    server.release.set()


def entries(repo: Path) -> list[str]:
    folder = repo / ".cloned" / "state" / "store" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_killed_during_install_nothing_is_installed_and_the_next_apply_converges(
    served: tuple[Team, Publisher, Stalling],
) -> None:
    team, _, server = served
    kill_during_download(team, server)
    assert entries(team.repo) == []
    plan = team.run("plan")
    assert "+ connector.weather" in plan.out
    # What the killed apply had applied stays applied, so this is no longer a bootstrap: the
    # connector now needs an admin, as any new connector does.
    assert team.run("apply").code == 3
    approve_pending(team)

    applied = approve_until_applied(team)  # then its tools, listed after the install
    assert applied.code == 0, applied.out + applied.err
    (entry,) = entries(team.repo)
    assert store_of(team.repo).verify(f"sha256:{entry}") == []
    assert list((team.repo / ".cloned" / "state" / "store" / "staging").iterdir()) == []
    assert team.run("plan", "--detailed-exitcode").code == 0


def test_killed_during_an_upgrade_the_old_version_stays_whole_until_the_next_apply(
    served: tuple[Team, Publisher, Stalling], tmp_path: Path
) -> None:
    team, publisher, server = served
    assert team.run("apply").code == 0
    (old,) = entries(team.repo)
    publisher.publish(tmp_path / "scratch", "1.0.1")
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher, "1.0.1", url=server.url))
    commit_all(team.repo, "weather 1.0.1")

    kill_during_download(team, server)
    assert entries(team.repo) == [old]
    assert store_of(team.repo).verify(f"sha256:{old}") == []
    assert "~ connector.weather" in team.run("plan").out

    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    (new,) = entries(team.repo)
    assert new != old
