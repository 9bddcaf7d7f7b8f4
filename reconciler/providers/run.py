"""Run: one execution of a Pipeline with given inputs, executed once (specs/runs.md).

A Run's planned state adds `execution`: the digest of the desired Pipeline it executes, the
digest of its inputs (the Pipeline's defaults filled in), and the execution's id, derived from
the Run's name and both digests. A Run is executed once per (name, pipeline digest, inputs
digest): a plan shows a changed Pipeline or changed inputs as a change of `execution`, a new
execution; applying the same Run again queues nothing. Applying queues the execution in the
state database (`runs`), in the transaction that records the Run; the runner
(`reconciler.runs`) executes queued runs after the apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.canonical import digest
from reconciler.errors import ClonedError
from reconciler.load.resources import LoadedResource
from reconciler.plan.types import Action, Change, FieldDiff, Risk
from reconciler.providers.base import ApplyContext, PinContext, RecordProvider

ID_PREFIX = "run-"


def resolved_inputs(pipeline: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The Run's inputs with the Pipeline's defaults for those it does not give."""
    declared = (pipeline.get("spec") or {}).get("inputs") or {}
    inputs = {
        name: spec.get("default")
        for name, spec in declared.items()
        if isinstance(spec, Mapping) and spec.get("default") is not None
    }
    inputs.update(given)
    return dict(sorted(inputs.items()))


def execution_of(
    name: str, run_spec: Mapping[str, Any], pipeline: Mapping[str, Any]
) -> dict[str, Any]:
    """A Run's `execution`: what it executes, as digests, and its id."""
    inputs = resolved_inputs(pipeline, run_spec.get("inputs") or {})
    pipeline_digest = digest(dict(pipeline))
    inputs_digest = digest(inputs)
    key = digest({"run": name, "pipeline": pipeline_digest, "inputs": inputs_digest})
    return {
        "id": ID_PREFIX + key.removeprefix("sha256:")[:16],
        "pipeline_digest": pipeline_digest,
        "inputs_digest": inputs_digest,
        "inputs": inputs,
    }


class RunProvider(RecordProvider):
    kind = "Run"

    def derive(self, resource: LoadedResource, context: PinContext) -> dict[str, Any]:
        pipeline_name = str(resource.spec.get("pipeline"))
        pipeline = context.pipelines.get(pipeline_name)
        if pipeline is None:  # the loader refuses a Run whose Pipeline is not declared
            raise ClonedError(
                f"{resource.origin}: run.{resource.name}: no Pipeline {pipeline_name}"
            )
        return {"execution": execution_of(resource.name, resource.spec, pipeline)}

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        return "low" if action in ("create", "delete") else "medium"

    def apply(self, context: ApplyContext, change: Change) -> None:
        super().apply(context, change)
        from reconciler.state import resources as rows
        from reconciler.state import runs

        after = change.proposed.after
        assert after is not None
        execution = after["execution"]
        spec = after.get("spec") or {}
        pipeline_name = str(spec["pipeline"])
        row = rows.get(context.connection, f"pipeline.{pipeline_name}")
        if row is None or row.digest != execution["pipeline_digest"]:
            raise ClonedError(
                f"{change.address}: pipeline.{pipeline_name} as applied is not the one this "
                "Run was planned against; plan again"
            )
        runs.queue(
            context.connection,
            run_id=str(execution["id"]),
            name=change.proposed.name,
            pipeline=pipeline_name,
            pipeline_digest=str(execution["pipeline_digest"]),
            inputs_digest=str(execution["inputs_digest"]),
            execution={"pipeline": json.loads(row.state), "inputs": execution["inputs"]},
            at=context.applied_at,
        )

    def delete(self, context: ApplyContext, change: Change) -> None:
        """Remove the Run; an execution of it not finished yet (queued, waiting, interrupted)
        is cancelled with it, so nothing runs for a Run that is gone."""
        super().delete(context, change)
        context.connection.execute(
            "UPDATE runs SET status = 'cancelled', reason = 'its Run was deleted', "
            "finished_at = ? WHERE name = ? AND status IN ('queued', 'running', 'waiting')",
            (context.applied_at, change.proposed.name),
        )
