"""Drift: the actual state checked against what the last apply left, and repaired."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from reconciler.canonical import digest
from reconciler.engine import drift
from reconciler.redact import Redactor
from reconciler.state.db import StateDB
from tests.conftest import cloned, git, write
from tests.func.engine_helpers import Team, make_team


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    team = make_team(repo, tmp_path)
    write(repo, ".gitignore", ".cloned/state/\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "Team workspace", cwd=repo)
    assert team.run("apply").code == 0
    return team


def tamper(repo: Path, sql: str, *args: object) -> None:
    """Edit the state database behind Cloned's back."""
    connection = sqlite3.connect(repo / ".cloned/state/cloned.db")
    connection.execute(sql, args)
    connection.commit()
    connection.close()


def report(team: Team) -> tuple[int, dict[str, object]]:
    result = team.run("drift", "--json")
    return result.code, json.loads(result.out)


def test_no_drift_after_apply(team: Team) -> None:
    shown = team.run("drift")
    assert shown.code == 0, shown.err
    assert "No drift: all 3 applied resources" in shown.out
    assert team.run("plan", "--refresh-only", "--detailed-exitcode").code == 0


def test_a_record_edited_outside_cloned_is_modified(team: Team) -> None:
    tamper(
        team.repo,
        "UPDATE resources SET state = replace(state, '100', '1000000') WHERE address = ?",
        "budget.daily",
    )
    code, found = report(team)
    assert code == 2
    assert found["items"] == [
        {
            "kind": "modified",
            "address": "budget.daily",
            "detail": "its content no longer matches what was applied",
        }
    ]
    assert found["pending_changes"] == 0
    assert team.run("plan", "--refresh-only").code == 0
    assert team.run("plan", "--refresh-only", "--detailed-exitcode").code == 2


def test_a_consistent_edit_is_caught_by_the_audit_log(team: Team) -> None:
    row = sqlite3.connect(team.repo / ".cloned/state/cloned.db").execute(
        "SELECT state FROM resources WHERE address = 'budget.daily'"
    )
    state = json.loads(row.fetchone()[0])
    state["spec"]["limits"]["calls"] = 1_000_000
    tamper(
        team.repo,
        "UPDATE resources SET state = ?, digest = ? WHERE address = 'budget.daily'",
        json.dumps(state, sort_keys=True),
        digest(state),
    )
    tamper(team.repo, "DELETE FROM resources WHERE address = 'budget.monthly'")
    code, found = report(team)
    assert code == 2
    kinds = {(item["kind"], item["address"]) for item in found["items"]}  # type: ignore[attr-defined]
    assert kinds == {
        ("unaudited", "budget.daily"),
        ("unaudited", "budget.monthly"),
        ("lock", "budget.daily"),
        ("lock", "budget.monthly"),
    }
    # Pending desired changes are counted apart: the plan now wants the budgets back.
    assert found["pending_changes"] == 2


def test_a_hand_edited_lock_is_lock_drift(team: Team) -> None:
    lock = team.repo / ".cloned/cloned.lock"
    data = json.loads(lock.read_text())
    data["resources"]["budget.daily"]["digest"] = "sha256:" + "0" * 64
    lock.write_text(json.dumps(data))
    code, found = report(team)
    assert code == 2
    assert found["items"] == [
        {"kind": "lock", "address": "budget.daily", "detail": "cloned.lock records another state"}
    ]


def test_drift_needs_the_state_database(team: Team, tmp_path: Path) -> None:
    git("clone", "-q", str(team.repo), str(tmp_path / "ci"), cwd=tmp_path)
    result = cloned("drift", cwd=tmp_path / "ci")
    assert result.code == 1
    assert "no state database here" in result.err


def test_heal_restores_the_audited_state_and_is_audited(team: Team) -> None:
    before = (team.repo / ".cloned/cloned.lock").read_text()
    tamper(
        team.repo,
        "UPDATE resources SET state = replace(state, '100', '1000000') WHERE address = ?",
        "budget.daily",
    )
    (team.repo / ".cloned/cloned.lock").unlink()
    db = StateDB.open(team.repo, create=False)
    assert db is not None
    try:
        found = drift.detect(team.repo, db)
        repairs = drift.heal(team.repo, db, found, actor="tester", redactor=Redactor())
    finally:
        db.close()
    assert [(r.address, r.action) for r in repairs] == [
        ("budget.daily", "restored"),
        (".cloned/cloned.lock", "lock rewritten"),
    ]
    assert report(team)[0] == 0
    assert (team.repo / ".cloned/cloned.lock").read_text() == before
    assert team.run("plan", "--detailed-exitcode").code == 0
    log = team.run("audit", "log", "--json", "--type", "drift.repaired")
    assert [json.loads(line)["subject"] for line in log.out.splitlines()] == [
        "workspace",
        "cloned.lock",
    ]
    assert team.run("audit", "verify").code == 0


def test_heal_without_an_audited_state_lets_policy_judge(team: Team) -> None:
    """A record with no audited state to return to is removed, and the plan puts it back
    before policy, instead of drift repair deciding on its own."""
    tamper(
        team.repo,
        "INSERT INTO resources SELECT 'budget.extra', kind, 'extra', state, digest, origin, "
        "applied_at, plan_id FROM resources WHERE address = 'budget.daily'",
    )
    db = StateDB.open(team.repo, create=False)
    assert db is not None
    try:
        repairs = drift.heal(
            team.repo, db, drift.detect(team.repo, db), actor="tester", redactor=Redactor()
        )
    finally:
        db.close()
    assert ("budget.extra", "removed") in [(r.address, r.action) for r in repairs]
    assert report(team)[0] == 0
