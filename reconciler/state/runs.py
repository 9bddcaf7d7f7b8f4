"""The `runs`, `run_steps` and `artifacts` tables: executions of Runs and their step journal
(specs/state-layout.md, specs/runs.md). Reads take the reader; writes take the caller's
transaction, so a step's outcome and the run's status change commit together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.state.db import Connection, StateDB

_RUNS = (
    "SELECT id, name, pipeline, pipeline_digest, inputs_digest, execution, status, reason, "
    "owner, queued_at, started_at, finished_at FROM runs "
)
_STEPS = (
    "SELECT run_id, idx, name, status, args_digest, output, usage, request_id, error, "
    "started_at, finished_at FROM run_steps "
)
ACTIVE = ("queued", "running", "waiting")
"""A run in one of these statuses is not finished: it executes (or resumes) when asked."""


@dataclass(frozen=True)
class RunRow:
    """One execution of a Run."""

    id: str
    name: str
    pipeline: str
    pipeline_digest: str
    inputs_digest: str
    execution: str
    status: str
    reason: str | None
    owner: int | None
    queued_at: str
    started_at: str | None
    finished_at: str | None

    def plan(self) -> dict[str, Any]:
        """What it executes: `{"pipeline": spec, "inputs": resolved inputs}`."""
        value: dict[str, Any] = json.loads(self.execution)
        return value

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`cloned runs list --json`)."""
        return {
            "id": self.id,
            "run": self.name,
            "pipeline": self.pipeline,
            "pipeline_digest": self.pipeline_digest,
            "inputs_digest": self.inputs_digest,
            "status": self.status,
            "reason": self.reason,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class StepRow:
    """The journal entry of one step of one run."""

    run_id: str
    idx: int
    name: str
    status: str
    args_digest: str | None
    output: str | None
    usage: str | None
    request_id: str | None
    error: str | None
    started_at: str | None
    finished_at: str | None

    def value(self) -> Any:
        """The step's output (JSON), None when it has none yet."""
        return json.loads(self.output) if self.output is not None else None

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`cloned runs show --json`)."""
        return {
            "index": self.idx,
            "name": self.name,
            "status": self.status,
            "args_digest": self.args_digest,
            "usage": json.loads(self.usage) if self.usage else None,
            "request": self.request_id,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def queue(
    connection: Connection,
    *,
    run_id: str,
    name: str,
    pipeline: str,
    pipeline_digest: str,
    inputs_digest: str,
    execution: dict[str, Any],
    at: str,
) -> bool:
    """Queue one execution; False when this (name, pipeline digest, inputs digest) was queued
    before (it is never executed twice)."""
    cursor = connection.execute(
        "INSERT OR IGNORE INTO runs (id, name, pipeline, pipeline_digest, inputs_digest, "
        "execution, status, queued_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
        (
            run_id,
            name,
            pipeline,
            pipeline_digest,
            inputs_digest,
            json.dumps(execution, sort_keys=True),
            at,
        ),
    )
    return cursor.rowcount == 1


def get(db: StateDB | Connection, run_id: str) -> RunRow | None:
    """The run `run_id`, or None."""
    reader = db.reader if isinstance(db, StateDB) else db
    row = reader.execute(_RUNS + "WHERE id = ?", (run_id,)).fetchone()
    return RunRow(*row) if row is not None else None


def all_runs(db: StateDB, *, name: str | None = None) -> list[RunRow]:
    """Every run (of Run `name`), the newest first."""
    if name is None:
        cursor = db.reader.execute(_RUNS + "ORDER BY queued_at DESC, rowid DESC")
    else:
        cursor = db.reader.execute(
            _RUNS + "WHERE name = ? ORDER BY queued_at DESC, rowid DESC", (name,)
        )
    return [RunRow(*row) for row in cursor.fetchall()]


def active(db: StateDB) -> list[RunRow]:
    """The runs not finished, the oldest first."""
    cursor = db.reader.execute(
        _RUNS + "WHERE status IN ('queued', 'running', 'waiting') ORDER BY queued_at, rowid"
    )
    return [RunRow(*row) for row in cursor.fetchall()]


def set_status(
    connection: Connection,
    run_id: str,
    status: str,
    *,
    reason: str | None = None,
    owner: int | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
) -> None:
    """Move run `run_id` to `status` (with why, who executes it and when)."""
    connection.execute(
        "UPDATE runs SET status = ?, reason = ?, owner = ?, "
        "started_at = COALESCE(started_at, ?), finished_at = ? WHERE id = ?",
        (status, reason, owner, started_at, finished_at, run_id),
    )


def steps(db: StateDB | Connection, run_id: str) -> dict[int, StepRow]:
    """The journal of run `run_id`, by step index."""
    reader = db.reader if isinstance(db, StateDB) else db
    cursor = reader.execute(_STEPS + "WHERE run_id = ? ORDER BY idx", (run_id,))
    return {row[1]: StepRow(*row) for row in cursor.fetchall()}


def step(connection: Connection, run_id: str, index: int) -> StepRow | None:
    """One journal entry, or None."""
    row = connection.execute(_STEPS + "WHERE run_id = ? AND idx = ?", (run_id, index)).fetchone()
    return StepRow(*row) if row is not None else None


def put_step(connection: Connection, step: StepRow) -> None:
    """Write (or replace) one journal entry."""
    connection.execute(
        "INSERT OR REPLACE INTO run_steps (run_id, idx, name, status, args_digest, output, "
        "usage, request_id, error, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            step.run_id,
            step.idx,
            step.name,
            step.status,
            step.args_digest,
            step.output,
            step.usage,
            step.request_id,
            step.error,
            step.started_at,
            step.finished_at,
        ),
    )
