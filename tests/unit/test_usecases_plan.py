"""The plan, show and drift use cases, called directly on real temporary git workspaces: what
they return (typed results), not what a front end prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import ClonedError, ExitCode
from reconciler.plan.document import MalformedPlan, PlanDocument
from reconciler.usecases.drift import drift
from reconciler.usecases.plans import plan, show
from tests.conftest import git, write
from tests.func.engine_helpers import Team, make_team

WHEN = "2026-12-01T09:00:00Z"

NO_BUDGETS = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: no-budgets}
spec:
  extends: baseline
  rules:
    - name: no-new-budgets
      match: {kinds: [Budget], actions: [create]}
      decision: deny
"""

BUDGET = """\
apiVersion: cloned/v1
kind: Budget
metadata: {name: monthly}
spec:
  scope: {workspace: true}
  period: month
  limits: {calls: 10}
"""


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return make_team(repo, tmp_path)


def applied(team: Team) -> Team:
    """The team's workspace applied and committed; then a budget raise waits for approval."""
    assert team.run("apply", "--no-commit").code == 0
    git("add", "-A", cwd=team.repo)
    git("commit", "-qm", "applied", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    return team


def test_a_plan_policy_denies_exits_4(workspace: Path) -> None:
    write(workspace, ".cloned/no-budgets.yaml", NO_BUDGETS)
    write(workspace, ".cloned/budget.yaml", BUDGET)
    text = (workspace / ".cloned/workspace.yaml").read_text()
    write(workspace, ".cloned/workspace.yaml", text.replace("[baseline]", "[baseline, no-budgets]"))
    result = plan(path=workspace, detailed=True)
    assert result.plan.denied
    assert result.plan.summary.deny == 1
    (denied,) = [c for c in result.plan.changes if c.decision.kind == "deny"]
    assert denied.address == "budget.monthly"
    assert [rule.id for rule in denied.decision.rules] == ["no-budgets/no-new-budgets"]
    assert result.exit_code == ExitCode.POLICY_DENIED


def test_detailed_exit_code_is_2_for_changes_and_0_without(team: Team) -> None:
    assert plan(path=team.repo).exit_code == ExitCode.OK
    pending = plan(path=team.repo, detailed=True)
    assert len(pending.plan.changes) == 3 and pending.plan.bootstrap
    assert pending.exit_code == ExitCode.CHANGES
    assert team.run("apply", "--no-commit").code == 0
    converged = plan(path=team.repo, detailed=True)
    assert converged.plan.changes == () and converged.exit_code == ExitCode.OK
    assert converged.plan.actual_source == "state" and converged.notes == ()


def test_out_saves_the_plan_and_records_it(team: Team) -> None:
    applied(team)
    out = team.repo / "raise.plan"
    result = plan(path=team.repo, out=out, created_at=WHEN)
    assert (result.saved_to, result.recorded) == (out, True)
    assert result.plan.created_at == WHEN
    (change,) = result.plan.changes
    assert change.approvals is not None and change.approvals.status == "pending"
    assert change.approvals.request == change.change_hash.removeprefix("sha256:")[:12]
    assert [(d.path, d.before, d.after) for d in change.diff] == [
        ("spec.limits.cost_usd", 50.0, 80.0)
    ]
    saved = out.read_text()
    assert saved == json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"
    events = team.run("audit", "log", "--type", "plan.saved", "--json").out.splitlines()
    (event,) = [json.loads(line) for line in events]
    assert event["subject"] == result.plan.plan_id
    assert event["payload"] == {"file": str(out), "summary": result.plan.summary.to_json()}

    shown = show(file=out)
    assert shown.plan == result.plan
    assert shown.to_json() == json.loads(saved) and shown.exit_code == ExitCode.OK


def test_a_plan_out_without_a_state_database_is_saved_but_not_recorded(team: Team) -> None:
    out = team.repo / "first.plan"
    result = plan(path=team.repo, out=out)
    assert out.exists() and result.recorded is False
    assert result.plan.actual_source == "empty" and result.notes == ()


def test_a_clone_without_a_state_database_is_told_it_plans_against_the_lock(
    team: Team, tmp_path: Path
) -> None:
    applied(team)
    clone = tmp_path / "clone"
    git("clone", "-q", str(team.repo), str(clone), cwd=tmp_path)
    result = plan(path=clone)
    assert result.plan.actual_source == "lock"
    (note,) = result.notes
    assert note.kind == "no-state-database"
    assert "planning against .cloned/cloned.lock" in note.message


def test_a_base_plan_notes_uncommitted_edits_and_keeps_its_json(team: Team) -> None:
    from reconciler.engine.preview import preview

    applied(team)
    git("checkout", "-qb", "raise", cwd=team.repo)
    git("commit", "-qam", "raise", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "period: day", "period: week")
    result = plan(path=team.repo, base="main", created_at=WHEN)
    assert result.plan.base is not None and result.plan.head is not None
    assert (result.plan.base.ref, result.plan.head.ref) == ("main", "raise")
    (note,) = result.notes
    assert note.kind == "uncommitted" and note.message.endswith("e.g. .cloned/budgets.yaml")
    assert [c.in_branch for c in result.plan.changes] == [True]
    # The document gives back the very JSON the engine built, key for key and in order.
    built = preview(team.repo, base="main").to_json(created_at=WHEN)
    assert json.dumps(result.to_json()) == json.dumps(built)
    assert PlanDocument.from_json(built) == result.plan


def test_show_refuses_a_plan_file_with_a_field_missing(tmp_path: Path) -> None:
    file = tmp_path / "bad.plan"
    file.write_text(
        json.dumps(
            {
                "format_version": 1,
                "plan_id": "sha256:" + "0" * 64,
                "changes": [],
                "desired_resources": {},
                "actual_resources": {},
            }
        )
    )
    with pytest.raises(ClonedError, match=r"bad\.plan: not a Cloned plan file \(created_at: "):
        show(file=file)
    with pytest.raises(MalformedPlan, match=r"^the plan: not an object$"):
        PlanDocument.from_json([])


def test_drift_reports_findings_and_its_exit_code(team: Team) -> None:
    assert team.run("apply", "--no-commit").code == 0
    clean = drift(path=team.repo, exit_on_drift=True)
    assert (clean.drifted, clean.checked, clean.pending) == (False, 3, 0)
    assert clean.exit_code == ExitCode.OK
    lock = team.repo / ".cloned/cloned.lock"
    lock.unlink()
    found = drift(path=team.repo, exit_on_drift=True)
    assert found.drifted and [item.kind for item in found.items] == ["lock"]
    assert found.exit_code == ExitCode.CHANGES
    assert found.to_json()["exit_code"] == 2
    assert drift(path=team.repo, exit_on_drift=False).exit_code == ExitCode.OK


def test_drift_without_a_state_database_is_an_error(team: Team) -> None:
    with pytest.raises(ClonedError, match="no state database here"):
        drift(path=team.repo, exit_on_drift=True)
