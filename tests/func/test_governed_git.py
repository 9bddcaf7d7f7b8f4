"""The governed call path with a real server from PyPI in its own environment: mcp-server-git
from its hash lock (the wheelhouse), pinned at install. Its read tool answers; a denied tool is
refused before the server sees it; `git_commit`, under `tools.requireApproval`, opens a request
bound to the exact arguments, goes through once after `cloned approvals approve`, and the same
call again waits on that request until it is approved again. An apply in between leaves the
call's request alone."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.governed.calls import CallRequest
from tests.conftest import commit_all, git, write
from tests.func.engine_helpers import Team, make_team
from tests.func.governed_helpers import real_calls
from tests.wheelhouse import pip_settings

GIT = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: git}
spec:
  source: {pypi: {package: mcp-server-git, lock: locks/git.txt}}
  version: 2026.10.19
  publisher: modelcontextprotocol
  tools: {deny: [git_reset]}
  sandbox:  # the repository it works on, the one folder of this machine it may see
    paths: [{path: WORK, write: true}]
"""
PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: commits}
spec:
  extends: baseline
  tools: {requireApproval: [git__git_commit]}
"""


def git_team(repo: Path, tmp_path: Path) -> tuple[Team, Path]:
    team = make_team(repo, tmp_path, packs="[commits]")
    work = tmp_path / "work"
    work.mkdir()
    write(repo, ".cloned/git.yaml", GIT.replace("WORK", str(work)))
    write(repo, ".cloned/policy.yaml", PACK)
    write(repo, ".gitignore", ".cloned/state/\n")
    pip = pip_settings(tmp_path / "pip")
    assert team.run("connectors", "lock", "git", env=pip).code == 0
    commit_all(repo, "git connector")
    applied = team.run("apply", env=pip)
    assert applied.code == 0, applied.out + applied.err
    git("init", "-q", "-b", "main", cwd=work)
    write(work, "a.txt", "hello\n")
    git("add", "a.txt", cwd=work)
    return team, work


def test_mcp_server_git_reads_refuses_and_commits_only_with_an_approval(
    repo: Path, tmp_path: Path
) -> None:
    team, work = git_team(repo, tmp_path)
    pins = json.loads((repo / ".cloned" / "cloned.lock").read_text())["resources"]
    names = pins["connector.git"]["state"]["tools"]["names"]
    assert {"git_status", "git_commit", "git_reset"} <= set(names)
    commit = CallRequest("git", "git_commit", {"repo_path": str(work), "message": "first"})
    status, reset, asked = real_calls(
        team.repo,
        CallRequest("git", "git_status", {"repo_path": str(work)}),
        CallRequest("git", "git_reset", {"repo_path": str(work)}),
        commit,
    )
    assert status.decision == "allowed" and "a.txt" in json.dumps(status.content), status
    assert reset.decision == "refused" and "tools.deny" in str(reset.rule), reset
    assert asked.decision == "approval" and asked.request_id is not None, asked
    assert not (work / ".git" / "refs" / "heads" / "main").exists()  # nothing committed yet

    assert team.run("apply").code == 0  # leaves the call's request alone
    approved = team.run("approvals", "approve", asked.request_id, "--key", "alice", who="alice")
    assert approved.code == 0, approved.err
    done, again = real_calls(team.repo, commit, commit)
    assert done.decision == "allowed" and not done.is_error, done
    assert "first" in git("log", "--oneline", cwd=work)
    # The approval was spent: the same call again waits on its request, pending once more.
    assert again.decision == "approval" and again.request_id == asked.request_id, again
    (request,) = [r for r in team.requests() if r["id"] == asked.request_id]
    assert request["status"] == "pending"
    assert team.run("audit", "verify").code == 0
