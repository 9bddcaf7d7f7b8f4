"""A publisher's registry for connector tests, made with Cloned's own commands, and a team
workspace whose Connector installs from it.

`acme/weather` is a small MCP server over stdio (the standard library only). Each version is
packed with `cloned connectors pack` and published with `cloned registry publish`.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Result, cloned, commit_all, write
from tests.fakes.tiny_mcp import server_source
from tests.func.engine_helpers import Team, make_team

PUBLISHER_KEYS = ("root", "targets", "online", "acme")
MANIFEST = """\
name: weather
version: {version}
publisher: acme
description: Forecasts.
run: {{command: [python, server.py]}}
tools: {tools}
"""


def weather_server(version: str, tools: str = "[forecast]") -> str:
    """acme/weather's server.py at `version`: a real MCP server serving the declared tools."""
    names = [name.strip() for name in tools.strip("[]").split(",") if name.strip()]
    return server_source(names, f"# weather {version}\n")


# A folder connector `echo` (tools/echo) for tests of path sources.
MANIFEST_ECHO = """\
name: echo
version: 0.1.0
publisher: team
run: {command: [python, server.py]}
tools: [echo]
"""
ECHO = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: echo}
spec:
  source: {path: tools/echo}
  version: 0.1.0
  publisher: team
"""
CONNECTOR = """\
apiVersion: cloned/v1
kind: Registry
metadata: {{name: acme}}
spec:
  url: {url}
  root: {pin}
---
apiVersion: cloned/v1
kind: Connector
metadata: {{name: weather}}
spec:
  source: {{registry: {{name: acme, package: acme/weather}}}}
  version: {version}
  publisher: acme
{extra}"""


@dataclass(frozen=True)
class Publisher:
    """The registry's owner: its keys (a CLONED_HOME of its own) and its folder."""

    home: Path
    folder: Path
    pin: str

    def key(self, name: str) -> str:
        return str(self.home / "keys" / name)

    def run(self, *args: str) -> str:
        result = cloned(*args, env={"CLONED_HOME": str(self.home)})
        assert result.code == 0, result.err
        return result.out

    def publish(self, scratch: Path, version: str, tools: str = "[forecast]") -> Path:
        """Pack and publish acme/weather `version` declaring `tools`; the packed archive."""
        src = scratch / f"src-{version}"
        shutil.rmtree(src, ignore_errors=True)
        write(src, "connector.yaml", MANIFEST.format(version=version, tools=tools))
        write(src, "server.py", weather_server(version, tools))
        out = scratch / f"weather-{version}.tar.gz"
        self.run("connectors", "pack", str(src), "--out", str(out))
        self.run(
            "registry", "publish", str(self.folder), str(out),
            "--key", self.key("acme"), "--online-key", self.key("online"),
        )  # fmt: skip
        return out

    def target(self, version: str) -> Path:
        """The published archive file of `version` in the registry's targets folder."""
        (found,) = (self.folder / "targets" / "acme").glob(f"*.weather-{version}.tar.gz")
        return found


def make_publisher(base: Path, folder: Path) -> Publisher:
    """A registry at `folder` with publisher acme delegated and weather 1.0.0 published."""
    home = base / "publisher-home"
    for name in PUBLISHER_KEYS:
        result = cloned("keys", "generate", name, env={"CLONED_HOME": str(home)})
        assert result.code == 0, result.err
    draft = Publisher(home, folder, "")
    top = ("--targets-key", draft.key("targets"), "--online-key", draft.key("online"))
    out = draft.run(
        "registry", "init", str(folder), "--root-key", draft.key("root"), *top, "--json"
    )
    draft.run(
        "registry", "delegate", str(folder), "--name", "acme",
        "--publisher-key", draft.key("acme"), *top,
    )  # fmt: skip
    publisher = Publisher(home, folder, json.loads(out)["root_pin"])
    publisher.publish(base / "scratch", "1.0.0")
    return publisher


_TEMPLATE: list[tuple[Path, Publisher]] = []


def copied_publisher(base: Path, folder: Path) -> Publisher:
    """What `make_publisher` makes, copied from one built once per test process (keys,
    registry and pin are the template's): building a registry is most of a test's time."""
    if not _TEMPLATE:
        scratch = Path(tempfile.mkdtemp(prefix="cloned-publisher-"))
        atexit.register(shutil.rmtree, scratch, True)
        _TEMPLATE.append((scratch, make_publisher(scratch, scratch / "reg")))
    built, template = _TEMPLATE[0]
    home = base / "publisher-home"
    shutil.copytree(template.home, home)
    shutil.copytree(template.folder, folder)
    shutil.copytree(built / "scratch", base / "scratch", dirs_exist_ok=True)  # 1.0.0's source
    return Publisher(home, folder, template.pin)


def connector_yaml(
    publisher: Publisher, version: str = "1.0.0", *, url: str = "file:reg", extra: str = ""
) -> str:
    return CONNECTOR.format(url=url, pin=publisher.pin, version=version, extra=extra)


def weather_team(root: Path, tmp_path: Path, *, url: str = "file:reg") -> tuple[Team, Publisher]:
    """A team workspace (baseline) whose Connector weather installs acme/weather 1.0.0 from a
    registry in the repository (`reg/`), committed, not applied yet."""
    team = make_team(root, tmp_path)
    publisher = copied_publisher(tmp_path, root / "reg")
    write(root, ".cloned/connectors.yaml", connector_yaml(publisher, url=url))
    write(root, ".gitignore", ".cloned/state/\n")
    commit_all(root, "Team workspace with the weather connector")
    return team, publisher


def approve_pending(team: Team, who: str = "alice") -> list[str]:
    """Approve every pending request as `who`; their ids."""
    ids = [str(r["id"]) for r in team.requests() if r["status"] == "pending"]
    for request in ids:
        approved = team.run("approvals", "approve", request, "--key", who, who=who)
        assert approved.code == 0, approved.err
    return ids


def approve_until_applied(team: Team, who: str = "alice", rounds: int = 3) -> Result:
    """Approve what is pending and apply again until nothing waits: an approved package is
    installed first, and the tool definitions it lists then need their own approval."""
    applied = team.run("apply")
    for _ in range(rounds):
        if applied.code != 3:
            break
        approve_pending(team, who)
        applied = team.run("apply")
    return applied


def events(team: Team, kind: str) -> list[dict[str, object]]:
    """The audit events of type `kind`, oldest first."""
    result = team.run("audit", "log", "--json")
    assert result.code == 0, result.err
    found = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    return [event for event in found if event["type"] == kind]
