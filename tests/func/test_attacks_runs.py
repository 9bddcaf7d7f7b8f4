"""Runs attacked as a hostile reviewer would (issue 14; specs/runs.md): what a run's signed
provenance claims about its approvers, a cancellation made while a call is in flight, a model
reporting absurd usage, an apply meeting a run another process executes, and templates where
the load-time checks do not look."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import commit_all, write
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.steps_mcp import CONNECTOR, MANIFEST, SERVER, pipeline, run
from tests.func.engine_helpers import Team, make_team
from tests.func.test_runs import GATED, TWO_STEPS, calls, listed, runs_team
from tests.func.test_runs_models import run_json, team_with

PER_CALL = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: calls}
spec:
  extends: baseline
  tools: {requireApproval: [steps__send]}
"""


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


def test_a_cancel_made_during_a_step_sticks_when_that_step_then_waits(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: `runs cancel` while a step's call is in flight, and that call then waits for a
    per-call approval. The run must stay cancelled: once the approval comes, no resume or apply
    may make the call a person cancelled."""
    from reconciler.usecases import runs as usecase

    team = make_team(repo, tmp_path, packs="[calls]")
    write(repo, ".cloned/calls.yaml", PER_CALL)
    write(repo, "tools/steps/connector.yaml", MANIFEST)
    write(repo, "tools/steps/server.py", SERVER)
    write(repo, ".cloned/steps.yaml", CONNECTOR)
    steps = TWO_STEPS.replace("name: step}\n      with: {n: 2", "name: send}\n      with: {n: 2")
    write(repo, ".cloned/report.yaml", pipeline(steps) + "---\n" + run("MCP"))
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "a run whose second call needs an approval")
    assert team.run("apply").code == 3  # it waits for the approval of its `send` call
    monkeypatch.setenv("CLONED_HOME", str(team.homes["operator"]))

    def cancel_at_the_call(line: str) -> None:
        if "write (tool) ..." in line:
            usecase.cancel(repo, "weekly")

    usecase.resume(repo, "weekly", progress=cancel_at_the_call)
    assert listed(team)[0]["status"] == "cancelled"
    (request,) = [r for r in team.requests() if r["status"] == "pending"]
    approved = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
    assert approved.code == 0, approved.err
    assert team.run("apply").code == 0
    resumed = team.run("runs", "resume", "weekly")  # refused: a script must not read success
    assert resumed.code == 1 and "was cancelled: it does not run again" in resumed.err
    assert listed(team)[0]["status"] == "cancelled"
    assert [c["tool"] for c in calls(team)] == ["step"]  # the cancelled call was never made


def test_a_model_reporting_absurd_usage_fails_its_step_and_is_charged_the_reservation(
    repo: Path, tmp_path: Path
) -> None:
    """Attack: the endpoint reports 10**30 prompt tokens (no SQLite integer holds that). The
    command must not crash with the run left `running`: the step fails naming the usage, and
    the budget keeps what was reserved for the call (it was sent, so it cost something)."""
    with FakeOpenAI.start(api_key=None) as fake:
        fake.reply("a draft", usage=(10**30, 5))
        team = team_with(repo, tmp_path, fake, tokens=100_000)
        applied = team.run("apply")
        assert applied.code == 1, applied.out + applied.err
        assert "Traceback" not in applied.err
        detail = run_json(team)
        assert detail["status"] == "failed", applied.err
        assert "usage" in str(detail["reason"]), detail["reason"]
        assert len(fake.completions()) == 1
    status = json.loads(team.run("budgets", "status", "--json").out)
    (drafts,) = [b for b in status["budgets"] if b["name"] == "drafts"]
    assert 1000 < drafts["limits"]["tokens"]["used"] < 1100  # its prompt and maxTokens


def test_an_apply_leaves_a_run_another_process_executes_and_executes_the_others(
    repo: Path, tmp_path: Path
) -> None:
    """Attack: `cloned apply` while another process is executing a run (its owner is alive).
    The apply must neither take that run over nor fail: it skips it and executes the run it
    queued itself (specs/runs.md: `running` is taken over only when its owner is gone)."""
    team = runs_team(repo, tmp_path, GATED)
    assert team.run("apply").code == 3
    (first,) = listed(team)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with sqlite3.connect(team.repo / ".cloned/state/cloned.db") as db:
            db.execute(
                "UPDATE runs SET status = 'running', owner = ? WHERE id = ?",
                (owner.pid, first["id"]),
            )
        write(repo, ".cloned/monthly.yaml", run("TUF", name="monthly"))
        commit_all(repo, "a second run")
        applied = team.run("apply")
        assert applied.code == 3, applied.out + applied.err  # the new run waits at its gate
        by_name = {str(row["run"]): row for row in listed(team)}
        assert by_name["monthly"]["status"] == "waiting"
        assert by_name["weekly"]["status"] == "running"  # still its owner's
    finally:
        owner.kill()
        owner.wait()


FIRST = 'Draft 1 on ${inputs.topic}", maxTokens: 1000}'


def test_a_model_step_resolves_templates_only_where_they_are_checked(
    repo: Path, tmp_path: Path
) -> None:
    """Attack: templates where the load-time checks do not look. A `system` text reading a
    later step must be refused by `cloned validate` (file, line), not fail mid-run; a
    `schema`'s strings are a JSON Schema, sent as written, never evaluated."""
    with FakeOpenAI.start(api_key=None) as fake:
        team = team_with(repo, tmp_path, fake, tokens=100_000)
        rel = ".cloned/pipeline.yaml"
        team.edit(rel, FIRST, FIRST[:-1] + ', system: "After ${steps.draft3.output}"}')
        refused = team.run("validate")
        assert refused.code == 1
        assert "pipeline.yaml:9:83: spec.steps[0].model.system" in refused.err
        assert 'step "draft3" runs later' in refused.err
        team.edit(rel, ', system: "After ${steps.draft3.output}"}', "}")
        schema = '{type: object, properties: {title: {type: string, description: "${inputs.x}"}}}'
        team.edit(rel, FIRST, FIRST[:-1] + f", schema: {schema}}}")
        commit_all(repo, "a schema whose description reads like a template")
        fake.reply('{"title": "t"}', usage=(5, 5))
        fake.reply("b", usage=(5, 5))
        fake.reply("c", usage=(5, 5))
        applied = team.run("apply")
        assert applied.code == 0, applied.out + applied.err
        sent = fake.completions()[0].response_format["json_schema"]["schema"]
        assert sent["properties"]["title"]["description"] == "${inputs.x}"
