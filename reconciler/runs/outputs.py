"""A finished run's outputs: the Pipeline's declared `outputs` resolved from the steps, stored
as artifacts, and the facts its signed provenance states (`artifacts.publish`).

A Pipeline without declared outputs publishes its last step's output as `result`. The facts
name everything the outputs came from: the pipeline and inputs (with their digests), each
connector a step called (its package digest and the pins of the tools called), each model
(name, model, base URL), each gate's approval request and who approved it, and each step
(kind, digest of its resolved arguments, digest of its output).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.canonical import canonical_json, digest, digest_of
from reconciler.clock import Clock, stamp
from reconciler.errors import ClonedError
from reconciler.state import runs

if TYPE_CHECKING:
    from reconciler.governed.applied import AppliedView
    from reconciler.state.db import StateDB
    from reconciler.state.runs import RunRow


def declared_outputs(
    steps: list[dict[str, Any]], plan: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The run's outputs by name (see the module)."""
    from reconciler.pipelines.expressions import ExpressionError, evaluate, parse_source

    declared = (plan["pipeline"].get("spec") or {}).get("outputs") or {}
    if not declared:
        last = str(steps[-1]["name"])
        return {"result": context["steps"][last]["output"]}
    found = {}
    for name, output in sorted(declared.items()):
        text = str(output.get("from") or "")
        try:
            found[name] = evaluate(parse_source(text), context)
        except ExpressionError as exc:
            raise ClonedError(f"output {name}: {exc.message}") from None
    return found


def run_facts(
    root: Path,
    db: StateDB,
    row: RunRow,
    plan: Mapping[str, Any],
    steps: list[dict[str, Any]],
    view: AppliedView,
    *,
    finished_at: str,
) -> Any:
    """The provenance facts of run `row` (`artifacts.provenance.RunFacts`)."""
    from reconciler.approvals import requests
    from reconciler.artifacts.provenance import RunFacts
    from reconciler.runs.runner import step_kind

    journal = runs.steps(db, row.id)
    connectors: dict[str, dict[str, Any]] = {}
    models: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    listed: list[dict[str, Any]] = []
    by_id = {request.id: request for request in requests.all_requests(db)}
    for index, step in enumerate(steps):
        kind = step_kind(step)
        entry = journal.get(index)
        if kind == "tool":
            used = json.loads(entry.usage) if entry is not None and entry.usage else {}
            _called(
                connectors,
                view,
                str(step["tool"]["connector"]),
                str(step["tool"]["name"]),
                used.get("pin"),
            )
        elif kind == "model":
            models.append(_model(db, str(step["model"]["name"])))
        elif kind == "skill" and entry is not None and entry.usage:
            # A skill's model and the tools it called are in its usage (runs.skillstep).
            used = json.loads(entry.usage)
            if used.get("model"):
                models.append(_model(db, str(used["model"])))
            for public in used.get("tools_called") or ():
                connector, _, tool = str(public).partition("__")
                _called(connectors, view, connector, tool)
        if entry is not None and entry.request_id and entry.request_id in by_id:
            request = by_id[entry.request_id]
            approvals.append(
                {
                    "request": request.id,
                    "step": entry.name,
                    "approvers": list(_approvers(root, view, request, entry.started_at)),
                    "change_hash": request.change_hash,
                }
            )
        output = entry.value() if entry is not None else None
        listed.append(
            {
                "name": str(step["name"]),
                "kind": kind,
                "args_digest": entry.args_digest if entry is not None else None,
                "output_digest": digest(output) if entry is not None else None,
            }
        )
    return RunFacts(
        run_id=row.id,
        run_name=row.name,
        pipeline=row.pipeline,
        pipeline_digest=row.pipeline_digest,
        inputs=dict(plan["inputs"]),
        inputs_digest=row.inputs_digest,
        connectors=dict(sorted(connectors.items())),
        models=_unique(models),
        approvals=approvals,
        steps=listed,
        started_at=row.started_at or row.queued_at,
        finished_at=finished_at,
    )


def publish_run(
    root: Path,
    db: StateDB,
    row: RunRow,
    plan: Mapping[str, Any],
    steps: list[dict[str, Any]],
    context: Mapping[str, Any],
    view: AppliedView,
    *,
    clock: Clock,
) -> Any:
    """Store the run's outputs and sign its provenance; the `Published` record."""
    from reconciler.artifacts.publish import publish

    outputs = declared_outputs(steps, plan, context)
    facts = run_facts(root, db, row, plan, steps, view, finished_at=stamp(clock.now()))
    return publish(root, db, facts, outputs)


def _called(
    connectors: dict[str, dict[str, Any]],
    view: AppliedView,
    connector: str,
    tool: str,
    pin: str | None = None,
) -> None:
    """Record that a step called `tool` of `connector`: its package digest and the tool's pin
    (`pin`: the one journaled when the call was made; else the applied one)."""
    applied = view.connectors.get(connector)
    if applied is None:
        return
    held = connectors.setdefault(
        applied.name, {"package": str(applied.package.get("digest")), "tools": {}}
    )
    held["tools"][tool] = pin or (applied.pins().get(tool) or {}).get("digest")


def _model(db: StateDB, name: str) -> dict[str, Any]:
    from reconciler.state import resources as rows

    with db.transaction() as connection:
        row = rows.get(connection, f"model.{name}")
    spec = json.loads(row.state).get("spec", {}) if row is not None else {}
    return {"name": name, "model": spec.get("model"), "baseUrl": spec.get("baseUrl")}


def _approvers(root: Path, view: AppliedView, request: Any, started: str | None) -> tuple[str, ...]:
    """Who approved `request` with a record that counts (`runs.gates.approved_by`), judged at
    the time its step went on (or now)."""
    from datetime import UTC, datetime

    from reconciler.clock import now
    from reconciler.runs import gates

    at = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if started else now()
    return gates.approved_by(
        root, request, workspace=view.workspace, workspace_spec=view.workspace_spec, at=at
    )


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        seen.setdefault(digest_of(canonical_json(item)), item)
    return list(seen.values())
