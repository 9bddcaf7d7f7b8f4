"""Runs, end to end with a real connector (tests/fakes/steps_mcp.py) and the real governed call
path: a Run applied is executed once, its outputs stored as artifacts with a signed provenance
that verifies; changed inputs are a new execution; a gate stops a run until an approval (and a
denial fails it); a failing step fails the run naming it; an interrupted call of a tool not
marked idempotent waits for a person's choice; a run killed with SIGKILL at random points
resumes and completes with the same artifacts (specs/runs.md)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import CLONED, Result, commit_all, write
from tests.fakes.steps_mcp import CONNECTOR, MANIFEST, SERVER, pipeline, run
from tests.func.engine_helpers import Team, make_team

TWO_STEPS = """\
    - name: gather
      tool: {connector: steps, name: step}
      with: {n: "${inputs.n}", text: "notes on ${inputs.topic}"}
    - name: write
      tool: {connector: steps, name: step}
      with: {n: 2, text: "report: ${steps.gather.output.text}"}
"""
OUTPUTS = "    report: {from: steps.write.output.text}\n"


def runs_team(
    repo: Path, tmp_path: Path, steps: str = TWO_STEPS, topic: str = "MCP", outputs: str = OUTPUTS
) -> Team:
    team = make_team(repo, tmp_path)
    write(repo, "tools/steps/connector.yaml", MANIFEST)
    write(repo, "tools/steps/server.py", SERVER)
    write(repo, ".cloned/steps.yaml", CONNECTOR)
    write(repo, ".cloned/report.yaml", pipeline(steps, outputs=outputs) + "---\n" + run(topic))
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "a pipeline and its run")
    return team


def listed(team: Team) -> list[dict[str, object]]:
    result = team.run("runs", "list", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)["runs"]  # type: ignore[no-any-return]


def calls(team: Team) -> list[dict[str, object]]:
    log = team.repo / ".cloned/state/connectors/steps/data/calls.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def shown(team: Team, ref: str = "weekly") -> dict[str, object]:
    result = team.run("runs", "show", ref, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


def test_an_applied_run_executes_once_and_its_artifacts_verify(repo: Path, tmp_path: Path) -> None:
    team = runs_team(repo, tmp_path)
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    (only,) = listed(team)
    assert only["status"] == "succeeded" and only["run"] == "weekly"
    assert [c["args"] for c in calls(team)] == [
        {"n": 1, "text": "notes on MCP"},
        {"n": 2, "text": "report: notes on MCP"},
    ]
    detail = shown(team)
    assert [s["status"] for s in detail["steps"]] == ["done", "done"]  # type: ignore[index]
    (artifact,) = detail["artifacts"]  # type: ignore[misc]
    assert artifact["name"] == "report"
    content = team.run("artifacts", "show", "report", "--run", str(only["id"]))
    assert content.code == 0 and "report: notes on MCP" in content.out
    verified = team.run("artifacts", "verify", str(only["id"]))
    assert verified.code == 0, verified.out + verified.err

    again = team.run("apply")  # nothing changed: the run is not executed again
    assert again.code == 0 and len(listed(team)) == 1 and len(calls(team)) == 2
    plan = team.run("runs", "plan", "weekly")
    assert "this execution is succeeded: it does not run again" in plan.out


def test_changed_inputs_are_a_new_execution_the_plan_shows(repo: Path, tmp_path: Path) -> None:
    team = runs_team(repo, tmp_path)
    assert team.run("apply").code == 0
    team.edit(".cloned/report.yaml", "topic: MCP", "topic: TUF")
    commit_all(repo, "another topic")
    planned = team.run("plan")
    assert "~ run.weekly" in planned.out and "execution.inputs_digest" in planned.out
    assert team.run("apply").code == 0
    first, second = listed(team)  # the newest first
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert first["inputs_digest"] != second["inputs_digest"]
    assert calls(team)[-1]["args"] == {"n": 2, "text": "report: notes on TUF"}


GATED = """\
    - name: gather
      tool: {connector: steps, name: step}
      with: {n: 1, text: "notes on ${inputs.topic}"}
    - name: write
      tool: {connector: steps, name: send}
      with: {n: 2, text: "report: ${steps.gather.output.text}"}
      gate: {groups: [admins]}
"""


def test_a_gate_waits_for_an_approval_and_a_denial_fails_the_run(
    repo: Path, tmp_path: Path
) -> None:
    team = runs_team(repo, tmp_path, GATED)
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err  # the run waits
    (row,) = listed(team)
    assert row["status"] == "waiting"
    assert len(calls(team)) == 1  # the gated step was not called
    (request,) = [r for r in team.requests() if r["status"] == "pending"]
    assert request["address"] == "run.weekly"
    approved = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
    assert approved.code == 0, approved.err
    resumed = team.run("runs", "resume", "weekly")
    assert resumed.code == 0, resumed.out + resumed.err
    assert listed(team)[0]["status"] == "succeeded"
    assert [c["tool"] for c in calls(team)] == ["step", "send"]
    assert team.run("artifacts", "verify", str(row["id"])).code == 0

    team.edit(".cloned/report.yaml", "topic: MCP", "topic: TUF")
    commit_all(repo, "another topic")
    assert team.run("apply").code == 3
    (pending,) = [r for r in team.requests() if r["status"] == "pending"]
    denied = team.run("approvals", "deny", str(pending["id"]), "--key", "alice", who="alice")
    assert denied.code == 0, denied.err
    failed = team.run("runs", "resume", "weekly")
    assert failed.code == 1
    assert "the gate of step write was denied" in failed.out
    assert len(calls(team)) == 3  # its first step ran; the denied one never did


def test_a_failing_step_fails_the_run_naming_it(repo: Path, tmp_path: Path) -> None:
    steps = "    - name: broken\n      tool: {connector: steps, name: fail}\n"
    team = runs_team(repo, tmp_path, steps, outputs="")
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    (row,) = listed(team)
    assert row["status"] == "failed"
    assert "step broken: it failed on purpose" in str(row["reason"])


def process(team: Team, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CLONED_HOME": str(team.homes["operator"])}
    return subprocess.Popen(
        [str(CLONED), *args],
        cwd=team.repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


SLOW = """\
    - name: gather
      tool: {connector: steps, name: step}
      with: {n: 1, text: "notes on ${inputs.topic}", sleep: 0.2}
    - name: write
      tool: {connector: steps, name: send}
      with: {n: 2, text: "report: ${steps.gather.output.text}", sleep: 0.4}
"""


def kill_during_step(team: Team, step_tool: str, *args: str) -> None:
    """Start `cloned ARGS` and SIGKILL it while `step_tool` is being called."""
    proc = process(team, *args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(c["tool"] == step_tool for c in calls(team)):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_an_interrupted_call_of_a_tool_not_marked_idempotent_waits_for_a_choice(
    repo: Path, tmp_path: Path
) -> None:
    gathered = "    report: {from: steps.gather.output.text}\n"
    team = runs_team(repo, tmp_path, SLOW, outputs=gathered)
    kill_during_step(team, "send", "apply")
    (row,) = listed(team)
    assert row["status"] == "running"  # its process is gone: the next resume takes it
    waiting = team.run("runs", "resume", "weekly")
    assert waiting.code == 3, waiting.out + waiting.err
    assert "step write was interrupted during its call" in waiting.out
    assert [c["tool"] for c in calls(team)] == ["step", "send"]  # not re-sent blindly
    skipped = team.run("runs", "resume", "weekly", "--skip")
    assert skipped.code == 0, skipped.out + skipped.err
    assert [s["status"] for s in shown(team)["steps"]] == ["done", "skipped"]  # type: ignore[index]
    assert len(calls(team)) == 2


def test_a_run_killed_at_random_points_resumes_with_the_same_artifacts(
    repo: Path, tmp_path: Path
) -> None:
    steps = SLOW.replace("name: send", "name: step")  # idempotent: safe to send again
    team = runs_team(repo, tmp_path, steps)
    twin_root = tmp_path / "twin"
    shutil.copytree(tmp_path, twin_root, symlinks=True, ignore=shutil.ignore_patterns("twin"))
    twin = Team(
        twin_root / "repo", {k: twin_root / v.name for k, v in team.homes.items()}, team.keys
    )
    assert twin.run("apply").code == 0  # the same run, never interrupted

    rng = random.Random(1406)
    kill_during_step(team, "step", "apply")  # the apply is done; its run is executing
    for _ in range(3):  # and again, at random points of the resumed run
        proc = process(team, "runs", "resume", "weekly")
        time.sleep(rng.uniform(0.05, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finished = team.run("runs", "resume", "weekly")
    assert finished.code == 0, finished.out + finished.err
    (row,) = listed(team)
    (twin_row,) = listed(twin)
    assert row["status"] == twin_row["status"] == "succeeded"
    ours = shown(team)["artifacts"]
    theirs = shown(twin)["artifacts"]
    assert [a["digest"] for a in ours] == [a["digest"] for a in theirs]  # type: ignore[union-attr]
    assert team.run("artifacts", "verify", str(row["id"])).code == 0


def test_runs_plan_is_a_dry_run(repo: Path, tmp_path: Path) -> None:
    team = runs_team(repo, tmp_path, GATED)
    planned: Result = team.run("runs", "plan", "weekly", "--json")
    assert planned.code == 0, planned.err
    data = json.loads(planned.out)
    assert data["status"] is None and data["gates"] == ["write"]
    assert data["steps"][0]["arguments"] == {"n": 1, "text": "notes on MCP"}
    assert data["steps"][1]["arguments"]["text"] == "report: ${steps.gather.output.text}"
    assert data["may_use"]["calls"] == 2
    # Nothing was called, nothing applied (only the loader's validation cache is written).
    assert not (repo / ".cloned" / "state" / "cloned.db").exists() and calls(team) == []


def test_reconcile_executes_the_run_its_cycle_applied(repo: Path, tmp_path: Path) -> None:
    team = runs_team(repo, tmp_path)
    once = team.run("reconcile", "--once", "--log-format", "json")
    assert once.code == 0, once.out + once.err
    events = [json.loads(line) for line in once.out.splitlines() if line.startswith("{")]
    (executed,) = [e for e in events if e.get("event") == "runs"]
    (row,) = executed["runs"]
    assert (row["run"], row["status"]) == ("weekly", "succeeded")
    assert len(calls(team)) == 2


def test_a_gate_approval_does_not_cover_a_tool_upgraded_after_it(
    repo: Path, tmp_path: Path
) -> None:
    team = runs_team(repo, tmp_path, GATED)
    assert team.run("apply").code == 3
    (gate,) = [r for r in team.requests() if r["status"] == "pending"]
    # While the run waits, the connector's `send` tool comes to say something else: re-pinned
    # with an admin's approval of the new package and definition.
    server = repo / "tools" / "steps" / "server.py"
    server.write_text(server.read_text().replace("Send something once.", "Send it, now twice."))
    commit_all(repo, "send says more")
    for _ in range(4):
        team.run("apply")
        pending = [
            r
            for r in team.requests()
            if r["status"] == "pending" and str(r["address"]).startswith("connector.")
        ]
        if not pending:
            break
        for request in pending:
            ok = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
            assert ok.code == 0, ok.err
    # The gate's first request was for the old pin: approving it now lets nothing through.
    late = team.run("approvals", "approve", str(gate["id"]), "--key", "alice", who="alice")
    assert late.code == 0, late.err
    resumed = team.run("runs", "resume", "weekly")
    assert resumed.code == 3, resumed.out + resumed.err
    (regate,) = [
        r for r in team.requests() if r["status"] == "pending" and r["address"] == "run.weekly"
    ]
    assert regate["id"] != gate["id"]
    assert [c["tool"] for c in calls(team)] == ["step"]  # the gated call was never made


def test_deleting_a_run_cancels_its_waiting_execution(repo: Path, tmp_path: Path) -> None:
    team = runs_team(repo, tmp_path, GATED)
    assert team.run("apply").code == 3
    report = repo / ".cloned/report.yaml"
    report.write_text(report.read_text().split("---\n")[0])  # the Pipeline stays, the Run goes
    commit_all(repo, "no more weekly runs")
    assert team.run("apply").code == 3  # a delete needs an admin
    (delete,) = [r for r in team.requests() if r["status"] == "pending" and r["action"] == "delete"]
    team.run("approvals", "approve", str(delete["id"]), "--key", "alice", who="alice")
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    (row,) = listed(team)
    assert (row["status"], row["reason"]) == ("cancelled", "its Run was deleted")
    assert [c["tool"] for c in calls(team)] == ["step"]
