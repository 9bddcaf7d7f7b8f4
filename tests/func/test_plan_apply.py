"""plan and apply through the real CLI: bootstrap, no-op, saved and stale plans, targets, locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.func.engine_helpers import Team, make_team


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return make_team(repo, tmp_path)


def test_bootstrap_applies_everything_then_nothing_changes(team: Team) -> None:
    plan = team.run("plan", "--json")
    assert plan.code == 0, plan.err
    data = json.loads(plan.out)
    assert data["bootstrap"] is True
    assert data["actual_source"] == "empty"
    assert [(c["address"], c["action"], c["decision"]) for c in data["changes"]] == [
        ("workspace.team", "create", "auto"),
        ("budget.daily", "create", "auto"),
        ("budget.monthly", "create", "auto"),
    ]
    applied = team.run("apply")
    assert applied.code == 0, applied.err
    assert "Apply finished: 3 applied." in applied.out
    lock = json.loads((team.repo / ".cloned" / "cloned.lock").read_text())
    assert sorted(lock["resources"]) == ["budget.daily", "budget.monthly", "workspace.team"]
    assert lock["resources"]["budget.monthly"]["state"]["spec"]["limits"] == {
        "cost_usd": 50.0,
        "calls": 1000,
    }
    again = team.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.out
    assert "No changes." in again.out
    assert team.run("apply").out.startswith("No changes.")


def test_lowering_a_limit_applies_and_raising_one_needs_approval(team: Team) -> None:
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "limits: {calls: 100}", "limits: {calls: 50}")
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    plan = team.run("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "~ budget.daily  (update, risk low" in plan.out
    assert "~ spec.limits.calls: 100 -> 50" in plan.out
    assert "decision: approval: baseline/budget-raise (1 from admins)" in plan.out
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert "budget.daily (update) applied" in applied.out
    assert "budget.monthly (update) awaiting approval" in applied.out
    (request,) = team.requests()
    assert request["address"] == "budget.monthly"
    assert request["status"] == "pending"
    assert request["rule"] == "baseline/budget-raise"
    # Re-running never opens a second request for the same change.
    assert team.run("apply").code == 3
    assert len(team.requests()) == 1


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(team: Team) -> None:
    saved = team.run("plan", "--out", "first.plan")
    assert saved.code == 0
    assert "Saved the plan to first.plan" in saved.out
    shown = team.run("show", "--json", "first.plan")
    assert (
        json.loads(shown.out)["plan_id"]
        == json.loads((team.repo / "first.plan").read_text())["plan_id"]
    )
    team.edit(".cloned/budgets.yaml", "limits: {calls: 100}", "limits: {calls: 90}")
    stale = team.run("apply", "first.plan")
    assert stale.code == 1
    assert "the saved plan is stale: the desired state changed since the plan was made" in stale.err
    assert "budget.daily modified" in stale.err
    assert not (team.repo / ".cloned" / "cloned.lock").exists()
    fresh = team.run("plan", "--out", "second.plan")
    assert fresh.code == 0
    assert team.run("apply", "second.plan").code == 0
    second_id = json.loads((team.repo / "second.plan").read_text())["plan_id"]
    saved_events = team.run("audit", "log", "--type", "plan.saved", "--json").out.splitlines()
    assert [json.loads(line)["subject"] for line in saved_events] == [second_id]
    again = team.run("apply", "second.plan")
    assert again.code == 1
    assert "the actual state changed since the plan was made" in again.err


def test_target_plans_only_the_address_and_what_it_needs(team: Team) -> None:
    plan = team.run("plan", "--json", "--target", "budget.daily")
    assert [c["address"] for c in json.loads(plan.out)["changes"]] == ["budget.daily"]
    bad = team.run("plan", "--target", "budget.nope")
    assert bad.code == 1
    assert "--target budget.nope: no such resource" in bad.err


def test_markdown_plan_for_a_pull_request(team: Team) -> None:
    result = team.run("plan", "--format", "markdown")
    assert result.code == 0
    assert result.out.startswith("### Cloned plan `")
    assert "| auto | 3 | | low | 2 |" in result.out
    assert "<details><summary>✅ <code>+ budget.daily</code>" in result.out


def test_a_second_apply_waits_for_the_lock_or_names_the_holder(team: Team) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from reconciler.state.db import StateDB
                from reconciler.state.lock import WorkspaceLock
                db = StateDB.open(Path(sys.argv[1]))
                with WorkspaceLock(db):
                    print("locked", flush=True)
                    time.sleep(float(sys.argv[2]))
                """
            ),
            str(team.repo),
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    refused = team.run("apply")
    assert refused.code == 1
    assert f"the workspace is locked by tester (pid {holder.pid}" in refused.err
    waited = team.run("apply", "--lock-timeout", "30")
    assert waited.code == 0, waited.err
    holder.wait(timeout=30)


def test_a_lock_left_by_a_killed_process_is_recovered(team: Team) -> None:
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from pathlib import Path; from reconciler.state.db import StateDB; "
            "from reconciler.state.lock import WorkspaceLock; "
            "WorkspaceLock(StateDB.open(Path(sys.argv[1]))).acquire(); os._exit(0)",
            str(team.repo),
        ],
        cwd=REPO,
        check=True,
    )
    assert dead.returncode == 0
    result = team.run("apply")
    assert result.code == 0, result.err
    assert "Recovered a stale workspace lock held by tester" in result.out


def test_apply_refuses_a_fresh_clone_that_has_applied_state(team: Team, tmp_path: Path) -> None:
    from tests.conftest import cloned, git

    assert team.run("apply").code == 0
    git("add", "-A", cwd=team.repo)
    git("commit", "-q", "-m", "applied", cwd=team.repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(team.repo), str(clone), cwd=tmp_path)
    assert not (clone / ".cloned" / "state").exists()
    plan = cloned("plan", cwd=clone)
    assert plan.code == 0
    assert "planning against .cloned/cloned.lock as committed" in plan.err
    refused = cloned("apply", cwd=clone)
    assert refused.code == 1
    assert (
        "this checkout has applied state (.cloned/cloned.lock, .cloned/audit) but no state database"
        in refused.err
    )
    assert not (clone / ".cloned" / "state" / "cloned.db").exists()
