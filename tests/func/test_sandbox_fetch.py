"""`mcp-server-fetch` from PyPI (its wheels from the local wheelhouse, hash-locked) runs in the
sandbox as a folder connector's environment and fetches through its egress proxy: the loopback
site its YAML allows answers, another service of this machine and the metadata address do not,
and every connection is audited. The server's own private-address guard is turned off
(`--allow-private-ips`): the proxy is the guard under test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.egress.sandbox import isolation
from reconciler.governed.calls import CallRequest
from reconciler.packages.pypi.resolve import lock
from tests.conftest import commit_all, git, write
from tests.fakes.site import serve
from tests.func.engine_helpers import make_team
from tests.func.governed_helpers import events, real_calls
from tests.wheelhouse import FETCH_PACKAGE, FETCH_VERSION, pip_settings

if os.environ.get("SANDBOX_TESTS") == "required":  # .ci/run: CI never skips these
    assert isolation().available, isolation().reason
pytestmark = pytest.mark.skipif(
    not isolation().available,
    reason=f"bubblewrap cannot isolate here ({isolation().reason}); .ci/run installs it",
)

MANIFEST = """\
name: fetch
version: 0.1.0
publisher: team
run: {command: [python, -m, mcp_server_fetch, --allow-private-ips, --ignore-robots-txt]}
tools: [fetch]
requirements: requirements.txt
"""


def connector(site: int) -> str:
    host = f'"127.0.0.1:{site}"'
    return (
        "apiVersion: cloned/v1\nkind: Connector\nmetadata: {name: fetch}\nspec:\n"
        "  source: {path: tools/fetch}\n  version: 0.1.0\n  publisher: team\n"
        f"  egress: {{allowHosts: [{host}], insecureHosts: [{host}]}}\n"
    )


def test_mcp_server_fetch_reaches_only_its_allowed_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = serve()
    site = serve()
    pip = pip_settings(tmp_path / "pip")
    for key, value in pip.items():
        monkeypatch.setenv(key, value)
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    team = make_team(repo, tmp_path)
    write(repo, "tools/fetch/connector.yaml", MANIFEST)
    write(
        repo,
        "tools/fetch/requirements.txt",
        lock(package=FETCH_PACKAGE, version=FETCH_VERSION).text(),
    )
    write(repo, ".cloned/fetch.yaml", connector(site))
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "fetch connector")
    applied = team.run("apply", env=pip)
    assert applied.code == 0, applied.out + applied.err

    allowed, elsewhere, metadata = real_calls(
        repo,
        CallRequest("fetch", "fetch", {"url": f"http://127.0.0.1:{site}/hello", "raw": True}),
        CallRequest("fetch", "fetch", {"url": f"http://127.0.0.1:{other}/hello", "raw": True}),
        CallRequest("fetch", "fetch", {"url": "http://169.254.169.254/latest/meta-data/"}),
    )
    assert allowed.decision == "allowed" and not allowed.is_error, allowed.content
    assert "hello from the allowed site" in allowed.content[0]["text"]
    for refused in (elsewhere, metadata):
        assert refused.is_error
        assert "403" in refused.content[0]["text"]
    seen = [
        (e["payload"]["decision"], e["payload"]["port"]) for e in events(repo, "egress.connection")
    ]
    assert seen == [("allowed", site), ("refused", other), ("refused", 80)]
