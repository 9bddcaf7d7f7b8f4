"""Benchmark of the runner (specs/runs.md), `make bench`:

- `overhead`: the runner's own cost per step beside the tool call it makes. A pipeline of
  `--steps` tool steps (the steps connector, tests/fakes/steps_mcp.py, each step reading the
  previous one's output) is executed in-process; the runner's time is the whole execution less
  the governed calls' own latency (each `tool.called` event's `latency_ms`), divided by the
  steps. Goal (issue 14): under 2 ms per step.
- `resume`: a 1,000-step pipeline killed before its last step (its journal holds 999 steps
  done, the run `running` with its process gone) resumes: the time of that resume, which reads
  the journal once and calls one step. Goal: under 1 s, not proportional to the work done.

    python tests/bench/bench_runs.py [--steps 100] [--long 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.timing import WORKSPACE, git, hermetic_env
from tests.fakes.steps_mcp import CONNECTOR, MANIFEST, SERVER

CLONED = Path(sys.executable).parent / "cloned"


def pipeline_yaml(name: str, count: int) -> str:
    lines = [
        "apiVersion: cloned/v1",
        "kind: Pipeline",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  steps:",
        "    - name: s0",
        "      tool: {connector: steps, name: step}",
        "      with: {n: 0, text: start}",
    ]
    for index in range(1, count):
        lines += [
            f"    - name: s{index}",
            "      tool: {connector: steps, name: step}",
            f'      with: {{n: {index}, text: "${{steps.s{index - 1}.output.text}}"}}',
        ]
    return "\n".join(lines) + "\n"


def workspace(base: Path, name: str, count: int) -> tuple[Path, dict[str, str]]:
    repo = base / name
    env = hermetic_env(base / f"home-{name}")
    (repo / ".cloned").mkdir(parents=True)
    (repo / "tools" / "steps").mkdir(parents=True)
    (repo / ".cloned" / "workspace.yaml").write_text(WORKSPACE)
    (repo / ".cloned" / "steps.yaml").write_text(CONNECTOR)
    (repo / "tools" / "steps" / "connector.yaml").write_text(MANIFEST)
    (repo / "tools" / "steps" / "server.py").write_text(SERVER)
    (repo / ".cloned" / "pipeline.yaml").write_text(
        pipeline_yaml("long", count) + "---\napiVersion: cloned/v1\nkind: Run\n"
        "metadata: {name: bench}\nspec: {pipeline: long}\n"
    )
    (repo / ".gitignore").write_text(".cloned/state/\n")
    git("init", "-q", "-b", "main", cwd=repo, env=env)
    git("add", "-A", cwd=repo, env=env)
    git("commit", "-q", "-m", "bench", cwd=repo, env=env)
    return repo, env


def apply(repo: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        [str(CLONED), "apply", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"apply failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return time.perf_counter() - began


def overhead(base: Path, count: int) -> dict[str, float]:
    """Execute the run in-process (its apply queued it without executing: `--json` apply
    executes too, so the run is queued again by resetting it)."""
    from reconciler.state.db import StateDB
    from reconciler.usecases.runs import execute

    repo, env = workspace(base, "overhead", count)
    apply(repo, env)  # bootstrap: installs, lists, queues and executes once (warms everything)
    with StateDB.open(repo, create=False) as db:  # type: ignore[union-attr]
        (run_id,) = [row[0] for row in db.reader.execute("SELECT id FROM runs")]
        seq = db.reader.execute("SELECT MAX(seq) FROM audit_events").fetchone()[0]
        with db.transaction() as connection:
            connection.execute("DELETE FROM run_steps WHERE run_id = ?", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, finished_at = NULL WHERE id = ?",
                (run_id,),
            )
    os.environ["CLONED_HOME"] = env["CLONED_HOME"]
    # What any process pays once, not per step: the MCP SDK and the call path's imports.
    import mcp.client.session  # noqa: F401

    import reconciler.governed.calls
    import reconciler.runs.runner  # noqa: F401

    began = time.perf_counter()
    (row,) = execute(repo, (run_id,)).runs
    total_ms = (time.perf_counter() - began) * 1000
    assert row.status == "succeeded", row.reason
    with StateDB.open(repo, create=False) as db:  # type: ignore[union-attr]
        latencies = [
            json.loads(payload)["latency_ms"]
            for (payload,) in db.reader.execute(
                "SELECT payload FROM audit_events WHERE type = 'tool.called' AND seq > ?", (seq,)
            )
        ]
    calls_ms = sum(latencies)
    return {
        "steps": count,
        "execute_ms": round(total_ms, 1),
        "calls_ms": round(calls_ms, 1),
        "runner_ms_per_step": round((total_ms - calls_ms) / count, 3),
        "goal_ms_per_step": 2.0,
    }


def resume(base: Path, count: int) -> dict[str, float]:
    from reconciler.state.db import StateDB

    repo, env = workspace(base, "resume", count)
    full_s = apply(repo, env)
    with StateDB.open(repo, create=False) as db:  # type: ignore[union-attr]
        (run_id,) = [row[0] for row in db.reader.execute("SELECT id FROM runs")]
        with db.transaction() as connection:  # killed before its last step
            connection.execute(
                "DELETE FROM run_steps WHERE run_id = ? AND idx = ?", (run_id, count - 1)
            )
            connection.execute(
                "UPDATE runs SET status = 'running', owner = 999999999, finished_at = NULL "
                "WHERE id = ?",
                (run_id,),
            )
    began = time.perf_counter()
    done = subprocess.run(
        [str(CLONED), "runs", "resume", run_id, "--json"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    resume_s = time.perf_counter() - began
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        "steps": count,
        "first_apply_s": round(full_s, 2),
        "resume_after_kill_s": round(resume_s, 3),
        "goal_s": 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--long", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        results = {"overhead": overhead(base, args.steps), "resume": resume(base, args.long)}
    results["load_average_1min"] = {"value": os.getloadavg()[0], "cores": os.cpu_count() or 0}
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
