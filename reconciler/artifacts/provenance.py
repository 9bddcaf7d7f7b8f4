"""A run's provenance: an in-toto Statement v1 whose predicate is SLSA Provenance v1.

The runner hands over `RunFacts` (what ran, with which pinned parts, when); `statement` turns
them and the stored outputs (`Subject`s) into the statement, a plain JSON value whose canonical
form (`reconciler.canonical`) is the DSSE payload. Nothing here reads a clock or a file: the same
facts and outputs give the same bytes. specs/artifacts.md is the field-by-field contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import __version__
from reconciler.artifacts.store import DIGEST
from reconciler.errors import ClonedError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://cloned.dev/pipeline-run/v1"
"""What a Cloned pipeline run's `buildDefinition` means: specs/artifacts.md#the-buildtype."""
BUILDER_ID = "https://cloned.dev/runner/v1"
"""Cloned's pipeline runner, on the machine holding the workspace's state and audit key."""


@dataclass(frozen=True)
class RunFacts:
    """What the runner knows about a finished run, for its provenance (issue 14, runs.md).

    Digests are `sha256:HEX`; `connectors` maps a connector's name to
    `{"package": digest, "tools": {tool: pin digest}}`; `models` holds
    `{"name", "model", "baseUrl"}`; `approvals` `{"request", "step", "approvers", "change_hash"}`;
    `steps` `{"name", "kind", "args_digest", "output_digest"}` in run order."""

    run_id: str
    run_name: str
    pipeline: str
    pipeline_digest: str
    inputs: Mapping[str, Any]
    inputs_digest: str
    connectors: Mapping[str, Mapping[str, Any]]
    models: Sequence[Mapping[str, Any]]
    approvals: Sequence[Mapping[str, Any]]
    steps: Sequence[Mapping[str, Any]]
    started_at: str
    finished_at: str


@dataclass(frozen=True)
class Subject:
    """One stored output: its name in the run, the digest of its bytes, what they are."""

    name: str
    digest: str
    media_type: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
        }


def statement(facts: RunFacts, subjects: Sequence[Subject]) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA Provenance v1 predicate) of a run and its outputs."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": s.name, "digest": {"sha256": _hex(s.digest, f"output {s.name}")}}
            for s in sorted(subjects, key=lambda s: s.name)
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": _build_definition(facts), "runDetails": _details(facts)},
    }


def _build_definition(facts: RunFacts) -> dict[str, Any]:
    return {
        "buildType": BUILD_TYPE,
        "externalParameters": {
            "run": facts.run_name,
            "pipeline": facts.pipeline,
            "inputs": dict(facts.inputs),
        },
        "internalParameters": {
            "pipelineDigest": _digest(facts.pipeline_digest, "pipeline_digest"),
            "inputsDigest": _digest(facts.inputs_digest, "inputs_digest"),
        },
        "resolvedDependencies": [
            *_connectors(facts.connectors),
            *(_model(model) for model in facts.models),
            *(_approval(approval) for approval in facts.approvals),
        ],
    }


def _connectors(connectors: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in sorted(connectors):
        connector = connectors[name]
        where = f"connector {name}"
        found.append(
            {
                "name": f"connector/{name}",
                "uri": f"cloned:connector/{name}",
                "digest": {"sha256": _hex(connector.get("package"), f"{where} package")},
            }
        )
        tools: Mapping[str, Any] = connector.get("tools") or {}
        for tool in sorted(tools):
            found.append(
                {
                    "name": f"connector/{name}/tool/{tool}",
                    "uri": f"cloned:connector/{name}/tool/{tool}",
                    "digest": {"sha256": _hex(tools[tool], f"{where} tool {tool}")},
                }
            )
    return found


def _model(model: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(model.get("name"), "a model's name")
    return {
        "name": f"model/{name}",
        "uri": _text(model.get("baseUrl"), f"model {name} baseUrl"),
        "annotations": {"model": _text(model.get("model"), f"model {name} model")},
    }


def _approval(approval: Mapping[str, Any]) -> dict[str, Any]:
    request = _text(approval.get("request"), "an approval's request")
    approvers = approval.get("approvers") or []
    return {
        "name": f"approval/{request}",
        "uri": f"cloned:approval/{request}",
        "digest": {"sha256": _hex(approval.get("change_hash"), f"approval {request}")},
        "annotations": {
            "step": _text(approval.get("step"), f"approval {request} step"),
            "approvers": sorted(_text(a, f"approval {request} approver") for a in approvers),
        },
    }


def _details(facts: RunFacts) -> dict[str, Any]:
    return {
        "builder": {"id": BUILDER_ID, "version": {"cloned": __version__}},
        "metadata": {
            "invocationId": facts.run_id,
            "startedOn": facts.started_at,
            "finishedOn": facts.finished_at,
        },
        "byproducts": [_step(index, step) for index, step in enumerate(facts.steps)],
    }


def _step(index: int, step: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(step.get("name"), f"step {index + 1} name")
    descriptor: dict[str, Any] = {
        "name": f"step/{name}",
        "uri": f"cloned:step/{name}",
        "annotations": {
            "index": index,
            "kind": _text(step.get("kind"), f"step {name} kind"),
            "argsDigest": _optional_digest(step.get("args_digest"), f"step {name} args_digest"),
        },
    }
    output = step.get("output_digest")
    if output is not None:
        descriptor["digest"] = {"sha256": _hex(output, f"step {name} output_digest")}
    return descriptor


def _digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not DIGEST.fullmatch(value):
        raise ClonedError(f"provenance: {what} is not a sha256: digest ({str(value)[:80]!r})")
    return value


def _optional_digest(value: object, what: str) -> str | None:
    return None if value is None else _digest(value, what)


def _hex(value: object, what: str) -> str:
    return _digest(value, what).removeprefix("sha256:")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ClonedError(f"provenance: {what} is missing or not a string")
    return value
