"""Runs attacked as a hostile reviewer would (issue 14): what a run's provenance claims, a
cancellation that must stick, and the usage a model reports (specs/runs.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.func.engine_helpers import Team
from tests.func.test_runs import GATED, listed, runs_team


def statement(team: Team, run_id: str) -> dict[str, Any]:
    """The in-toto statement a run's envelope signs."""
    line = (team.repo / f".cloned/state/artifacts/runs/{run_id}.intoto.jsonl").read_text()
    return json.loads(base64.b64decode(json.loads(line)["payload"]))  # type: ignore[no-any-return]


def test_the_provenance_names_only_approvers_whose_records_count(
    repo: Path, tmp_path: Path
) -> None:
    """Attack: alice approves the gate, and beside her record lies one claiming bob (alice's
    record with the name changed: its signature does not verify, so the gate does not count
    it). The signed provenance must name alice alone: `artifacts verify` passes, so whatever
    the statement says is believed."""
    team = runs_team(repo, tmp_path, GATED)
    assert team.run("apply").code == 3
    (request,) = [r for r in team.requests() if r["status"] == "pending"]
    rid = str(request["id"])
    assert team.run("approvals", "approve", rid, "--key", "alice", who="alice").code == 0
    folder = team.repo / ".cloned/approvals" / rid
    forged = json.loads((folder / "alice.json").read_text())
    forged["approver"] = "bob"
    (folder / "bob.json").write_text(json.dumps(forged))
    resumed = team.run("runs", "resume", "weekly")
    assert resumed.code == 0, resumed.out + resumed.err
    (row,) = listed(team)
    assert team.run("artifacts", "verify", str(row["id"])).code == 0
    dependencies = statement(team, str(row["id"]))["predicate"]["buildDefinition"][
        "resolvedDependencies"
    ]
    (approval,) = [d for d in dependencies if d["name"] == f"approval/{rid}"]
    assert approval["annotations"]["approvers"] == ["alice"]
