"""`cloned runs list|show|logs|plan|resume|cancel`, and executing queued runs after an apply
or a reconcile (specs/runs.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import ClonedError, ExitCode
from reconciler.state.runs import RunRow, StepRow

__all__ = ["Executed", "RunDetail", "RunPlan", "RunRow", "StepRow"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Executed:
    """What executing runs came to: each run's row after."""

    runs: tuple[RunRow, ...]

    @property
    def exit_code(self) -> ExitCode:
        if any(run.status == "failed" for run in self.runs):
            return ExitCode.ERROR
        if any(run.status == "waiting" for run in self.runs):
            return ExitCode.APPROVALS_PENDING
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"runs": [run.to_json() for run in self.runs], "exit_code": int(self.exit_code)}


@dataclass(frozen=True)
class RunDetail:
    """One run with its journal and artifacts (`cloned runs show`)."""

    run: RunRow
    steps: tuple[StepRow, ...]
    names: tuple[str, ...]
    """The pipeline's step names, in order (steps not reached yet have no journal entry)."""
    artifacts: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        journal = {step.idx: step for step in self.steps}
        return {
            **self.run.to_json(),
            "steps": [
                journal[index].to_json()
                if index in journal
                else {"index": index, "name": name, "status": "pending"}
                for index, name in enumerate(self.names)
            ],
            "artifacts": list(self.artifacts),
        }


def _db(root: Path) -> Any:
    from reconciler.state.db import StateDB

    db = StateDB.open(root, create=False)
    if db is None:
        raise ClonedError(f"{root}: nothing is applied here", hint="run `cloned apply` first")
    return db


def execute(
    root: Path,
    run_ids: tuple[str, ...] | None = None,
    *,
    actor: str = "runner",
    progress: Progress | None = None,
    choice: str | None = None,
) -> Executed:
    """Execute the runs `run_ids` (default: every queued, waiting or interrupted run, less those
    another live process is executing)."""
    import anyio

    from reconciler.governed.calls import GovernedCaller
    from reconciler.redact import active
    from reconciler.runs.runner import Runner, RunRefused
    from reconciler.runtime.supervisor import Supervisor
    from reconciler.state import runs

    db = _db(root)
    try:
        wanted = run_ids if run_ids is not None else tuple(row.id for row in runs.active(db))
    finally:
        db.close()
    if not wanted:
        return Executed(())

    async def main() -> tuple[RunRow, ...]:
        async with Supervisor(redactor=active()) as supervisor:
            caller = GovernedCaller(root, connectors=supervisor, actor=actor)
            runner = Runner(root, caller, actor=actor, progress=progress)
            try:
                done = []
                for run_id in wanted:
                    try:
                        done.append(await runner.execute(run_id, choice=choice))  # type: ignore[arg-type]
                    except RunRefused:
                        if run_ids is not None:
                            raise
                        # Another live process executes it (or it went since it was listed):
                        # an apply or a reconcile leaves it to that process and goes on.
                return tuple(done)
            finally:
                runner.close()
                await caller.aclose()

    return Executed(anyio.run(main))


def resume(
    path: Path, ref: str, *, choice: str | None = None, progress: Progress | None = None
) -> Executed:
    """Execute run `ref` again from where it stopped (`choice`: retry or skip an interrupted
    call)."""
    from reconciler.load.files import find_root

    root = find_root(path)
    row = show(root, ref).run
    if row.status == "cancelled":
        raise ClonedError(
            f"run {row.id} ({row.name}) was cancelled: it does not run again",
            hint="change the Run's inputs (or its Pipeline) and apply: that is a new execution",
        )
    return execute(root, (row.id,), progress=progress, choice=choice)


def list_runs(path: Path, *, name: str | None = None) -> tuple[RunRow, ...]:
    """Every run (of Run `name`), the newest first."""
    from reconciler.load.files import find_root
    from reconciler.state import runs

    db = _db(find_root(path))
    try:
        return tuple(runs.all_runs(db, name=name))
    finally:
        db.close()


def find(db: Any, ref: str) -> RunRow:
    """The run `ref` names: its id, or a Run's name (its newest execution)."""
    from reconciler.state import runs

    row = runs.get(db, ref)
    if row is None:
        newest = runs.all_runs(db, name=ref)
        if not newest:
            known = ", ".join(sorted({r.name for r in runs.all_runs(db)})) or "none"
            raise ClonedError(f"no run {ref!r} (runs: {known})", hint="`cloned runs list`")
        row = newest[0]
    return row


def show(path: Path, ref: str) -> RunDetail:
    """Run `ref` (an id, or a Run's name: its newest execution) with its journal."""
    from reconciler.load.files import find_root
    from reconciler.state import runs

    db = _db(find_root(path))
    try:
        row = find(db, ref)
        names = tuple(
            str(step["name"])
            for step in (row.plan()["pipeline"].get("spec") or {}).get("steps") or []
        )
        from reconciler.state import artifact_rows

        artifacts = tuple(
            {"name": a.name, "digest": a.digest, "media_type": a.media_type, "size": a.size}
            for a in artifact_rows.of_run(db.reader, row.id)
        )
        return RunDetail(row, tuple(runs.steps(db, row.id).values()), names, artifacts)
    finally:
        db.close()


def logs(path: Path, ref: str) -> list[dict[str, Any]]:
    """The audit events of run `ref`'s execution (its start, waits, end, and its calls)."""
    from reconciler.load.files import find_root

    db = _db(find_root(path))
    try:
        row = find(db, ref)
        cursor = db.reader.execute(
            "SELECT seq, ts, actor, type, subject, payload FROM audit_events "
            "WHERE subject = ? OR type = 'tool.called' ORDER BY seq",
            (f"run.{row.name}",),
        )
        found = []
        for seq, ts, actor, kind, subject, payload in cursor.fetchall():
            data = json.loads(payload)
            if kind == "tool.called" and data.get("pipeline") != row.pipeline:
                continue
            if kind != "tool.called" and data.get("id") not in (row.id, None):
                continue
            found.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "actor": actor,
                    "type": kind,
                    "subject": subject,
                    "payload": data,
                }
            )
        return found
    finally:
        db.close()


def cancel(path: Path, ref: str) -> RunRow:
    """Cancel run `ref` (queued, waiting or running: a running one stops after its step)."""
    from reconciler.audit.log import append
    from reconciler.clock import stamp
    from reconciler.load.files import find_root
    from reconciler.redact import active
    from reconciler.state import runs

    db = _db(find_root(path))
    try:
        row = find(db, ref)
        if row.status not in runs.ACTIVE:
            raise ClonedError(f"run {row.id} is {row.status}: there is nothing to cancel")
        with db.transaction() as connection:
            runs.set_status(
                connection, row.id, "cancelled", reason="cancelled", finished_at=stamp()
            )
            append(
                connection,
                actor="local",
                type="run.cancelled",
                subject=f"run.{row.name}",
                payload={"run": row.name, "id": row.id, "pipeline": row.pipeline},
                redactor=active(),
            )
        cancelled = runs.get(db, row.id)
        assert cancelled is not None
        return cancelled
    finally:
        db.close()


@dataclass(frozen=True)
class PlannedStep:
    """One step as the dry run sees it."""

    index: int
    name: str
    kind: str
    target: str
    arguments: Any
    """Resolved where only inputs are read; a template reading an earlier step is shown as is."""
    gate: dict[str, Any] | None
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "arguments": self.arguments,
            "gate": self.gate,
            "max_tokens": self.max_tokens,
            "max_cost_usd": self.max_cost_usd,
        }


@dataclass(frozen=True)
class RunPlan:
    """`cloned runs plan NAME`: what an execution of Run NAME would do, calling nothing."""

    run: str
    run_id: str
    pipeline: str
    inputs: dict[str, Any]
    steps: tuple[PlannedStep, ...]
    status: str | None
    """This execution's status when it was queued before (it is never executed twice)."""
    budgets: tuple[str, ...]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    @property
    def calls(self) -> int:
        return sum(1 for step in self.steps if step.kind in ("tool", "model"))

    def to_json(self) -> dict[str, Any]:
        tokens = [s.max_tokens for s in self.steps if s.max_tokens is not None]
        costs = [s.max_cost_usd for s in self.steps if s.max_cost_usd is not None]
        return {
            "run": self.run,
            "id": self.run_id,
            "pipeline": self.pipeline,
            "inputs": self.inputs,
            "status": self.status,
            "steps": [step.to_json() for step in self.steps],
            "gates": [s.name for s in self.steps if s.gate],
            "may_use": {
                "calls": self.calls,
                "tokens": sum(tokens),
                "cost_usd": round(sum(costs), 6),
            },
            "budgets": list(self.budgets),
        }


def plan_run(path: Path, name: str) -> RunPlan:
    """The dry run of Run `name` as the desired state (`.cloned/`) declares it."""
    from reconciler.engine.planner import resource_state
    from reconciler.load.files import find_root
    from reconciler.load.workspace import load_desired_state
    from reconciler.providers.run import execution_of
    from reconciler.runs.runner import step_kind
    from reconciler.state import runs
    from reconciler.state.db import StateDB

    root = find_root(path)
    desired = load_desired_state(root)
    found = {(r.kind, r.name): r for r in desired.resources}
    run = found.get(("Run", name))
    if run is None:
        known = ", ".join(sorted(n for k, n in found if k == "Run")) or "none"
        raise ClonedError(f"no Run {name!r} in .cloned/ (Runs: {known})")
    pipeline_name = str(run.spec["pipeline"])
    pipeline = resource_state(found[("Pipeline", pipeline_name)].data)
    execution = execution_of(name, run.spec, pipeline)
    context = {"inputs": execution["inputs"], "steps": {}}
    planned = []
    for index, step in enumerate(pipeline["spec"].get("steps") or []):
        kind = step_kind(step)
        if kind == "model":  # templates only where the runner resolves them
            arguments = dict(step["model"])
            for key in ("prompt", "system"):
                if arguments.get(key) is not None:
                    arguments[key] = _partly_resolved(arguments[key], context)
        else:
            arguments = _partly_resolved(step.get("with") or {}, context)
        tokens = cost = None
        target = ""
        if kind == "tool":
            target = f"{step['tool']['connector']}__{step['tool']['name']}"
        elif kind == "model":
            target = str(step["model"]["name"])
            model = found.get(("Model", target))
            tokens, cost = _model_estimate(step["model"], model.spec if model else {})
        else:
            target = str(step.get("skill"))
        planned.append(
            PlannedStep(
                index, str(step["name"]), kind, target, arguments, step.get("gate"), tokens, cost
            )
        )
    status = None
    with StateDB.existing(root) as db:
        if db is not None:
            row = runs.get(db, str(execution["id"]))
            status = row.status if row is not None else None
    budgets = tuple(
        sorted(
            r.name
            for r in desired.resources
            if r.kind == "Budget"
            and (
                r.spec.get("scope", {}).get("workspace")
                or r.spec.get("scope", {}).get("pipeline") == pipeline_name
            )
        )
    )
    return RunPlan(
        name,
        str(execution["id"]),
        pipeline_name,
        execution["inputs"],
        tuple(planned),
        status,
        budgets,
    )


def _partly_resolved(value: Any, context: dict[str, Any]) -> Any:
    """`value` with the templates that read only inputs resolved; the others as written."""
    from reconciler.pipelines.expressions import ExpressionError, references, resolve

    if isinstance(value, dict):
        return {key: _partly_resolved(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_partly_resolved(item, context) for item in value]
    if isinstance(value, str) and all(ref[0] == "inputs" for ref in references(value)):
        try:
            return resolve(value, context)
        except ExpressionError:
            return value
    return value


def _model_estimate(block: dict[str, Any], spec: dict[str, Any]) -> tuple[int, float]:
    """The most a model step may use: its prompt at one token per 4 characters plus
    maxTokens, and that at the Model's prices."""
    import math

    prompt = len(str(block.get("prompt") or "")) + len(str(block.get("system") or ""))
    output = int(block.get("maxTokens") or 1024)
    given = math.ceil(prompt / 4)
    price = spec.get("price") or {}
    cost = given * float(price.get("inputPerMTok") or 0) / 1e6
    cost += output * float(price.get("outputPerMTok") or 0) / 1e6
    return given + output, round(cost, 6)
