"""A PolicyPack's `denyHosts` covers registry downloads too: a Connector from an http registry
on a denied host is refused at plan time, naming the pack's rule, before a request is sent;
the same registry allowed by the packs installs (specs/egress.md, "The rules of one
connector")."""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import commit_all, write
from tests.func.engine_helpers import Team
from tests.func.registry_helpers import Publisher, weather_team

PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {{name: corp}}
spec:
  extends: baseline
  egress: {{denyHosts: [{host}]}}
"""


class Counting(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


def served_team(root: Path, tmp_path: Path, denied: str) -> tuple[Team, list[str]]:
    """The weather team with its registry served over http on loopback, under pack `corp`
    denying `denied`; the paths the server was asked for."""
    team, publisher = weather_team(root, tmp_path)
    served = tmp_path / "served"
    shutil.copytree(root / "reg", served)
    seen: list[str] = []
    handler = type("Handler", (Counting,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    write_connectors(team, publisher, url)
    write(root, ".cloned/corp.yaml", PACK.format(host=denied))
    workspace = (root / ".cloned" / "workspace.yaml").read_text()
    write(root, ".cloned/workspace.yaml", workspace.replace("[baseline]", "[corp]"))
    commit_all(root, "weather from the served registry, under corp")
    return team, seen


def write_connectors(team: Team, publisher: Publisher, url: str) -> None:
    from tests.func.registry_helpers import connector_yaml

    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher, url=url))


def test_a_pack_deny_refuses_the_registry_download_before_any_request(
    repo: Path, tmp_path: Path
) -> None:
    team, seen = served_team(repo, tmp_path, "127.0.0.1")
    plan = team.run("plan")
    assert plan.code == 1, plan.out + plan.err
    assert "is denied (pack corp egress.denyHosts: 127.0.0.1)" in plan.err
    assert seen == []  # refused before the request, not after an answer


def test_the_same_registry_installs_when_no_pack_denies_it(repo: Path, tmp_path: Path) -> None:
    team, seen = served_team(repo, tmp_path, "registry.example.org")
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    assert any(path.startswith("/targets/") for path in seen)
