"""The GitOps workflow on real repositories: audit commits, CI dry-runs from git objects,
approvals made on a pull-request branch, and a branch that tries to approve itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cloned, commit_all, git, snapshot, write
from tests.func.engine_helpers import Team, applied_team, make_team


def files_of(repo: Path, commit: str = "HEAD") -> list[str]:
    """The paths a commit changed."""
    out = git("show", "--name-only", "--format=", commit, cwd=repo)
    return sorted(line for line in out.splitlines() if line)


def porcelain(repo: Path, *paths: str) -> list[str]:
    return git(
        "status", "--porcelain", "--untracked-files=all", "--", *paths, cwd=repo
    ).splitlines()


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return applied_team(repo, tmp_path)


# --- Audit commits -----------------------------------------------------------------------------


def test_the_audit_commit_holds_only_the_audit_log_and_lock(team: Team) -> None:
    repo = team.repo
    assert files_of(repo) == [
        ".cloned/audit/checkpoints.jsonl",
        ".cloned/audit/segments/00000001-00000005.jsonl",
        ".cloned/cloned.lock",
    ]
    message = git("log", "-1", "--format=%B", cwd=repo)
    desired = git("rev-parse", "HEAD~1", cwd=repo).strip()
    assert message.startswith("cloned: apply ")
    assert "3 applied" in message.splitlines()[0]
    assert f"Cloned-Desired: {desired}" in message
    assert porcelain(repo) == []


def test_the_users_staged_unstaged_and_untracked_work_is_left_alone(team: Team) -> None:
    repo = team.repo
    write(repo, "notes.md", "draft\n")
    git("add", "notes.md", cwd=repo)  # staged, must not be committed
    write(repo, ".gitignore", ".cloned/state/\n*.tmp\n")  # tracked, modified, unstaged
    write(repo, "scratch.txt", "untracked\n")
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 50}")  # unstaged desired change
    before = porcelain(repo, "notes.md", ".gitignore", "scratch.txt", ".cloned/budgets.yaml")

    applied = team.run("apply")

    assert applied.code == 0, applied.err
    assert "Audit commit " in applied.out
    assert all(
        path.startswith((".cloned/audit/", ".cloned/cloned.lock")) for path in files_of(repo)
    )
    after = porcelain(repo, "notes.md", ".gitignore", "scratch.txt", ".cloned/budgets.yaml")
    assert (
        after
        == before
        == [
            " M .cloned/budgets.yaml",
            " M .gitignore",
            "A  notes.md",
            "?? scratch.txt",
        ]
    )
    message = git("log", "-1", "--format=%B", cwd=repo)
    assert "(with uncommitted changes)" in message
    assert porcelain(repo, ".cloned/audit", ".cloned/cloned.lock") == []


def test_the_workspace_names_the_author(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path)
    team.edit(
        ".cloned/workspace.yaml",
        "  policyPacks:",
        "  git:\n    author: {name: Cloned Bot, email: bot@example.com}\n  policyPacks:",
    )
    commit_all(repo, "Team workspace")
    assert team.run("apply").code == 0
    assert (
        git("log", "-1", "--format=%an <%ae>", cwd=repo).strip() == "Cloned Bot <bot@example.com>"
    )


def test_no_commit_and_disabled_commits_leave_the_files_for_later(team: Team) -> None:
    repo = team.repo
    head = git("rev-parse", "HEAD", cwd=repo)
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 90}")
    commit_all(repo, "Lower the daily calls")
    head = git("rev-parse", "HEAD", cwd=repo)
    skipped = team.run("apply", "--no-commit", "--json")
    assert skipped.code == 0, skipped.err
    assert json.loads(skipped.out)["audit_commit"] is None
    assert git("rev-parse", "HEAD", cwd=repo) == head
    assert porcelain(repo, ".cloned/audit", ".cloned/cloned.lock") != []

    team.edit(
        ".cloned/workspace.yaml", "  policyPacks:", "  git: {auditCommits: false}\n  policyPacks:"
    )
    # Changing the Workspace needs approval, so the setting is not applied yet: this apply's
    # audit commit still happens, and carries the events the --no-commit run left behind.
    pending = team.run("apply", "--json")
    assert pending.code == 3, pending.out
    assert json.loads(pending.out)["audit_commit"]["status"] == "committed"
    assert porcelain(repo, ".cloned/audit", ".cloned/cloned.lock") == []
    assert "Lower the daily calls" in git("log", "-2", "--format=%s", cwd=repo)


def test_a_detached_head_is_refused_and_the_next_run_commits_everything(team: Team) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 80}")
    commit_all(repo, "Lower the daily calls")
    git("checkout", "-q", "--detach", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo)

    applied = team.run("apply")

    assert applied.code == 0, applied.err
    assert "no audit commit: HEAD is detached" in applied.err
    assert git("rev-parse", "HEAD", cwd=repo) == head
    left = porcelain(repo, ".cloned/audit", ".cloned/cloned.lock")
    assert left
    git("checkout", "-q", "main", cwd=repo)
    git("merge", "-q", "--ff-only", head.strip(), cwd=repo)
    again = team.run("apply")
    assert again.code == 0, again.err
    committed = files_of(repo)
    assert {line[3:] for line in left} <= set(committed)
    assert porcelain(repo, ".cloned/audit", ".cloned/cloned.lock") == []
    assert team.run("audit", "verify").code == 0


def test_a_merge_in_progress_is_refused(team: Team) -> None:
    repo = team.repo
    git("checkout", "-q", "-b", "other", cwd=repo)
    write(repo, "a.txt", "other\n")
    commit_all(repo, "other")
    git("checkout", "-q", "main", cwd=repo)
    write(repo, "a.txt", "main\n")
    commit_all(repo, "main")
    subprocess.run(["git", "merge", "-q", "other"], cwd=repo, capture_output=True, check=False)
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 70}")
    applied = team.run("apply")
    assert applied.code == 0, applied.err
    assert "no audit commit: a merge is in progress" in applied.err


# --- CI dry-runs -------------------------------------------------------------------------------


def clone(source: Path, dest: Path, branch: str = "main") -> Path:
    git("clone", "-q", "--branch", branch, str(source), str(dest), cwd=source.parent)
    return dest


def test_a_fresh_clone_plans_against_the_committed_lock(team: Team, tmp_path: Path) -> None:
    copy = clone(team.repo, tmp_path / "ci")
    write(
        copy,
        ".cloned/budgets.yaml",
        (copy / ".cloned/budgets.yaml").read_text().replace("{calls: 100}", "{calls: 200}"),
    )
    planned = cloned("plan", "--json", cwd=copy)
    assert planned.code == 0, planned.err
    assert "planning against .cloned/cloned.lock" in planned.err
    plan = json.loads(planned.out)
    assert plan["actual_source"] == "lock"
    (change,) = plan["changes"]
    assert change["address"] == "budget.daily"
    assert change["decision"] == "approval"
    assert change["approvals"]["status"] == "pending"
    refused = cloned("apply", cwd=copy)
    assert refused.code == 1
    assert "no state database" in refused.err


def test_plan_base_reads_git_objects_and_writes_nothing(team: Team, tmp_path: Path) -> None:
    copy = clone(team.repo, tmp_path / "ci")
    git("checkout", "-q", "-b", "raise", cwd=copy)
    text = (copy / ".cloned/budgets.yaml").read_text()
    write(copy, ".cloned/budgets.yaml", text.replace("cost_usd: 50", "cost_usd: 80"))
    commit_all(copy, "Raise the monthly budget")
    # An uncommitted edit is not part of a --base plan.
    write(copy, ".cloned/budgets.yaml", text.replace("cost_usd: 50", "cost_usd: 999"))
    before = snapshot(copy)

    planned = cloned("plan", "--base", "main", "--json", cwd=copy)

    assert planned.code == 0, planned.err
    assert snapshot(copy) == before
    assert "uncommitted change(s) under .cloned/ are not part of this plan" in planned.err
    plan = json.loads(planned.out)
    assert plan["base"]["ref"] == "main"
    assert plan["head"] == {"ref": "raise", "commit": git("rev-parse", "HEAD", cwd=copy).strip()}
    (change,) = plan["changes"]
    assert change["diff"] == [{"path": "spec.limits.cost_usd", "before": 50.0, "after": 80.0}]
    assert change["in_branch"] is True
    markdown = cloned("plan", "--base", "main", "--format", "markdown", cwd=copy).out
    assert "| `budget.monthly` |" in markdown
    assert "⏳ pending" in markdown
    assert "--base main" in markdown


def test_plan_base_tells_the_branchs_changes_from_the_bases(team: Team, tmp_path: Path) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 60}")
    commit_all(repo, "Merged but not applied yet")
    git("checkout", "-q", "-b", "raise", cwd=repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(repo, "Raise")
    plan = json.loads(cloned("plan", "--base", "main", "--json", cwd=repo).out)
    marks = {change["address"]: change["in_branch"] for change in plan["changes"]}
    assert marks == {"budget.daily": False, "budget.monthly": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--base", "no-such-branch"], "--base: 'no-such-branch' names no commit"),
        (["plan", "--base", "--json"], "--base: '--json' is not a revision"),
        (["approvals", "verify", "--base", "nope"], "--base: 'nope' names no commit"),
        (["plan", "--refresh-only", "--base", "main"], "--refresh-only: cannot be combined"),
        (
            ["approvals", "approve", "ffffffffffff", "--key", "alice", "--base", "main"],
            "no change in the plan against main",
        ),
    ],
)
def test_bad_base_input_names_the_flag(team: Team, args: list[str], message: str) -> None:
    before = snapshot(team.repo)
    result = team.run(*args, who="alice")
    assert result.code == 1, result.out
    assert message in result.err
    assert "Traceback" not in result.err
    assert snapshot(team.repo) == before


# --- Pull-request approvals --------------------------------------------------------------------


def test_the_pull_request_flow_end_to_end(team: Team, tmp_path: Path) -> None:
    server = team.repo  # where the state database lives and the reconciler runs
    remote = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(server), str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=server)
    git("fetch", "-q", "origin", cwd=server)

    # The author opens a pull request that raises a budget.
    author = clone(remote, tmp_path / "author")
    git("checkout", "-q", "-b", "raise", cwd=author)
    text = (author / ".cloned/budgets.yaml").read_text()
    write(author, ".cloned/budgets.yaml", text.replace("cost_usd: 50", "cost_usd: 80"))
    commit_all(author, "Raise the monthly budget")
    git("push", "-q", "origin", "raise", cwd=author)

    # CI: a fresh clone of the branch, planning against the base.
    ci = clone(remote, tmp_path / "ci", branch="raise")
    plan = json.loads(cloned("plan", "--base", "origin/main", "--json", cwd=ci).out)
    (change,) = plan["changes"]
    request = change["approvals"]["request"]
    assert change["approvals"]["status"] == "pending"
    waiting = cloned("approvals", "verify", "--base", "origin/main", cwd=ci)
    assert waiting.code == 3, waiting.out + waiting.err
    assert f"budget.monthly [request {request}]: pending" in waiting.out

    # A reviewer approves on the branch, in a clone without any state database.
    reviewer = clone(remote, tmp_path / "reviewer", branch="raise")
    approved = cloned(
        "approvals",
        "approve",
        request,
        "--key",
        "alice",
        "--base",
        "origin/main",
        cwd=reviewer,
        env={"CLONED_HOME": str(team.homes["alice"])},
    )
    assert approved.code == 0, approved.err
    commit_all(reviewer, "Approve the raise")
    git("push", "-q", "origin", "raise", cwd=reviewer)

    git("pull", "-q", "--ff-only", cwd=ci)
    verified = cloned("approvals", "verify", "--base", "origin/main", cwd=ci)
    assert verified.code == 0, verified.out + verified.err
    assert f"budget.monthly [request {request}]: approved by alice" in verified.out
    markdown = cloned("plan", "--base", "origin/main", "--format", "markdown", cwd=ci).out
    assert f"| `budget.monthly` | `{request}` | ✅ approved | alice |" in markdown

    # Merge, then the workspace converges where its state lives.
    git("fetch", "-q", "origin", cwd=author)
    git("checkout", "-q", "main", cwd=author)
    git("merge", "-q", "--ff-only", "origin/raise", cwd=author)
    git("push", "-q", "origin", "main", cwd=author)
    git("pull", "-q", "--ff-only", "origin", "main", cwd=server)
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    assert "budget.monthly (update) applied: approved by alice" in applied.out
    assert "approved_by" in cloned("audit", "log", "--json", cwd=server).out
    assert porcelain(server) == []


def test_a_branch_cannot_approve_itself(team: Team, tmp_path: Path) -> None:
    mallory_home = tmp_path / "home-mallory"
    key = cloned("keys", "generate", "mallory", env={"CLONED_HOME": str(mallory_home)}).out.strip()
    as_mallory = {"CLONED_HOME": str(mallory_home)}
    branch = clone(team.repo, tmp_path / "mallory")
    git("checkout", "-q", "-b", "sneaky", cwd=branch)
    workspace = (branch / ".cloned/workspace.yaml").read_text()
    write(
        branch,
        ".cloned/workspace.yaml",
        workspace + f'    - name: mallory\n      publicKey: "{key}"\n      groups: [admins]\n',
    )
    budgets = (branch / ".cloned/budgets.yaml").read_text()
    write(branch, ".cloned/budgets.yaml", budgets.replace("cost_usd: 50", "cost_usd: 5000"))
    commit_all(branch, "Add me and raise the budget")

    # With the base's approvers, mallory's key is nobody's.
    plan = json.loads(cloned("plan", "--base", "main", "--json", cwd=branch).out)
    request = next(c for c in plan["changes"] if c["address"] == "budget.monthly")["approvals"][
        "request"
    ]
    refused = cloned(
        "approvals",
        "approve",
        request,
        "--base",
        "main",
        "--key",
        "mallory",
        cwd=branch,
        env=as_mallory,
    )
    assert refused.code == 1
    assert "not an approver" in refused.err

    # Editing the branch's own cloned.lock to list mallory fools only a plain, lock-trusting
    # plan in the clone, never --base nor apply.
    lock = json.loads((branch / ".cloned/cloned.lock").read_text())
    state = lock["resources"]["workspace.team"]["state"]
    state["spec"]["approvers"].append({"name": "mallory", "publicKey": key, "groups": ["admins"]})
    write(branch, ".cloned/cloned.lock", json.dumps(lock, indent=2))
    forged = cloned("approvals", "approve", request, "--key", "mallory", cwd=branch, env=as_mallory)
    assert forged.code == 0, forged.err
    commit_all(branch, "Approve it myself")

    verified = cloned("approvals", "verify", "--base", "main", cwd=branch)
    assert verified.code == 1
    assert f".cloned/approvals/{request}/mallory.json" in verified.out
    assert '"mallory" is not an approver' in verified.out or "not an approver" in verified.out

    # Merged anyway, apply still refuses to count it: approvers come from the applied state;
    # and the forged lock is rewritten from the state database.
    git("pull", "-q", "--no-rebase", str(branch), "sneaky", cwd=team.repo)
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert "budget.monthly (update) awaiting approval" in applied.out
    assert "mallory" not in (team.repo / ".cloned/cloned.lock").read_text()


def test_verify_base_sees_only_committed_records_and_names_stale_ones(
    team: Team, tmp_path: Path
) -> None:
    branch = clone(team.repo, tmp_path / "branch")
    git("checkout", "-q", "-b", "raise", cwd=branch)
    budgets = (branch / ".cloned/budgets.yaml").read_text()
    write(branch, ".cloned/budgets.yaml", budgets.replace("cost_usd: 50", "cost_usd: 80"))
    commit_all(branch, "Raise")
    plan = json.loads(cloned("plan", "--base", "main", "--json", cwd=branch).out)
    request = plan["changes"][0]["approvals"]["request"]
    alice = {"CLONED_HOME": str(team.homes["alice"])}
    approve = ("approvals", "approve", request, "--key", "alice", "--base", "main")
    assert cloned(*approve, cwd=branch, env=alice).code == 0

    uncommitted = cloned("approvals", "verify", "--base", "main", cwd=branch)
    assert uncommitted.code == 3
    assert "1 approval record(s) are not committed" in uncommitted.err

    commit_all(branch, "Approve")
    assert cloned("approvals", "verify", "--base", "main", cwd=branch).code == 0
    write(branch, ".cloned/budgets.yaml", budgets.replace("cost_usd: 50", "cost_usd: 90"))
    commit_all(branch, "Raise more")
    stale = cloned("approvals", "verify", "--base", "main", cwd=branch)
    assert stale.code == 3
    assert "approves an earlier version of this change" in stale.out
    assert "0 valid, 1 expired or stale, 0 invalid" in stale.out
