"""Publishing a run's outputs: store them, record them, sign their provenance.

The runner calls `publish` once a run has produced its outputs. Each output is stored
content-addressed (`store.put`), the in-toto statement of the run and its subjects is signed as
a DSSE envelope with the workspace's audit key and written to `artifacts/runs/RUN_ID.intoto.jsonl`,
and the `artifacts` rows are inserted, the envelope written inside the transaction that records
them: a crash leaves either nothing recorded (files the next publish finds again, by digest) or
rows with their envelope. Publishing the same outputs for a run again is a no-op; other outputs
for a run already published are refused. Outputs and the statement pass through the process's
redactor (`reconciler.redact.active`) first, as everything else Cloned writes does: a secret
value registered anywhere in the run never reaches an artifact or its provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.artifacts import dsse, store
from reconciler.artifacts.provenance import RunFacts, Subject, statement
from reconciler.atomic import write_atomic
from reconciler.audit.signing import pin, workspace_signer
from reconciler.canonical import canonical_json
from reconciler.clock import stamp
from reconciler.errors import ClonedError
from reconciler.redact import active
from reconciler.state import artifact_rows
from reconciler.state.artifact_rows import ArtifactRow
from reconciler.state.db import StateDB

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Published:
    """What `publish` recorded: the run's subjects, by name, and its envelope file."""

    subjects: tuple[Subject, ...]
    envelope: Path


def encode(value: Any) -> tuple[bytes, str]:
    """An output's bytes and media type: a string as UTF-8 text, any other JSON value as
    canonical JSON."""
    try:
        if isinstance(value, str):
            return value.encode("utf-8"), TEXT
        return canonical_json(value), JSON
    except (TypeError, ValueError) as exc:
        raise ClonedError(f"an output is not a JSON value in UTF-8 ({exc})") from None


def publish(root: Path, db: StateDB, facts: RunFacts, outputs: Mapping[str, Any]) -> Published:
    """Store `outputs` of run `facts.run_id`, record them and write their signed provenance."""
    if not outputs:
        # An in-toto statement needs a subject: a run without outputs has nothing to attest.
        raise ClonedError(f"run {facts.run_id} has no outputs to publish")
    signer = workspace_signer(db, root)
    redactor = active()
    subjects = tuple(_store(root, name, redactor.data(outputs[name])) for name in sorted(outputs))
    envelope = dsse.sign(_payload(redactor.data(statement(facts, subjects))), signer)
    path = store.envelope_path(root, facts.run_id)
    created = stamp()
    with db.transaction() as connection:
        pin(connection, signer)
        recorded = artifact_rows.of_run(connection, facts.run_id)
        if recorded:
            _same_as_recorded(facts.run_id, recorded, subjects)
            if path.exists():
                return Published(subjects, path)
        write_atomic(path, envelope.line())
        if not recorded:
            for subject in subjects:
                artifact_rows.insert(connection, _row(facts.run_id, subject, created))
    return Published(subjects, path)


def _payload(value: dict[str, Any]) -> bytes:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ClonedError(f"provenance: the run's facts are not JSON values ({exc})") from None


def _store(root: Path, name: object, value: Any) -> Subject:
    if not isinstance(name, str) or not name or name != name.strip():
        raise ClonedError(f"an output's name must be a non-empty string, not {name!r}")
    data, media_type = encode(value)
    return Subject(name, store.put(root, data), media_type, len(data))


def _same_as_recorded(
    run_id: str, recorded: list[ArtifactRow], subjects: tuple[Subject, ...]
) -> None:
    had = {(r.name, r.digest, r.media_type, r.size) for r in recorded}
    new = {(s.name, s.digest, s.media_type, s.size) for s in subjects}
    if had != new:
        raise ClonedError(
            f"run {run_id} already published other artifacts "
            f"({', '.join(sorted(r.name for r in recorded))}); a run's artifacts are written once"
        )


def _row(run_id: str, subject: Subject, created: str) -> ArtifactRow:
    return ArtifactRow(
        run_id, subject.name, subject.digest, subject.media_type, subject.size, created
    )
