"""Verifying a run's artifacts and provenance against the state database and the pinned key.

Four checks, in order, each naming what failed: `files` (every recorded artifact's file is
there and re-hashes to its digest and size), `envelope` (the run's `.intoto.jsonl` is one DSSE
envelope of type `application/vnd.in-toto+json`), `signature` (a signature over its PAE
verifies with the audit key the `meta` table pins, never a key the envelope names), and
`statement` (the payload is the canonical JSON of an in-toto Statement v1 with the SLSA
Provenance v1 predicate and Cloned's buildType, for this run, whose subjects are exactly the
recorded rows). A check that cannot run because an earlier one failed is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.artifacts import dsse, store
from reconciler.artifacts.provenance import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
from reconciler.audit.signing import fingerprint, pinned_key
from reconciler.canonical import canonical_json, parse_json
from reconciler.state import artifact_rows
from reconciler.state.artifact_rows import ArtifactRow
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class Check:
    """One check of a verification: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Verification:
    """The outcome of `verify_run`: every check that ran, and the artifacts checked."""

    run_id: str
    checks: tuple[Check, ...]
    artifacts: tuple[ArtifactRow, ...]
    envelope: str  # the envelope file, relative to the workspace root

    @property
    def ok(self) -> bool:
        """Whether everything verified (and there was something to verify)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failure(self) -> Check | None:
        """The first check that failed, or None."""
        return next((check for check in self.checks if not check.ok), None)

    def to_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "run_id": self.run_id,
            "verified": self.ok,
            "failure": None if failure is None else f"{failure.name}: {failure.detail}",
            "checks": [check.to_json() for check in self.checks],
            "envelope": self.envelope,
            "artifacts": [
                {"name": row.name, "digest": row.digest, "size": row.size} for row in self.artifacts
            ],
        }


class _Failed(Exception):
    """A check's failure, carrying what it found."""


def verify_run(root: Path, db: StateDB, run_id: str) -> Verification:
    """Check run `run_id`'s artifact files, envelope, signature and statement."""
    path = store.envelope_path(root, run_id)
    rows = tuple(artifact_rows.of_run(db.reader, run_id))
    if not rows:
        missing = Check("recorded", False, f"no artifacts are recorded for run {run_id}")
        return Verification(run_id, (missing,), rows, _rel(root, path))
    checks = [_run("files", lambda: _files(root, rows))]
    envelope: list[dsse.Envelope] = []
    checks.append(_run("envelope", lambda: _envelope(root, path, envelope)))
    if envelope:
        pinned = pinned_key(db.reader)
        checks.append(_run("signature", lambda: _signature(envelope[0], pinned)))
        checks.append(_run("statement", lambda: _statement(envelope[0].payload, run_id, rows)))
    return Verification(run_id, tuple(checks), rows, _rel(root, path))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except _Failed as failure:
        return Check(name, False, str(failure))


def _files(root: Path, rows: tuple[ArtifactRow, ...]) -> str:
    for row in rows:
        try:
            data = store.read(root, row.digest)
        except store.ArtifactDamaged as exc:
            raise _Failed(f"artifact {row.name}: {exc.message}") from None
        if len(data) != row.size:
            raise _Failed(f"artifact {row.name}: {len(data)} bytes, recorded {row.size}")
    return f"{len(rows)} artifact file(s) match their digests"


def _envelope(root: Path, path: Path, found: list[dsse.Envelope]) -> str:
    rel = _rel(root, path)
    try:
        envelope = dsse.parse(path.read_bytes())
    except FileNotFoundError:
        raise _Failed(f"{rel}: the provenance envelope is missing") from None
    except (OSError, ValueError) as exc:
        raise _Failed(f"{rel}: not a DSSE envelope ({exc})") from None
    if envelope.payload_type != dsse.PAYLOAD_TYPE:
        raise _Failed(f"{rel}: payloadType is {envelope.payload_type!r}, not {dsse.PAYLOAD_TYPE}")
    found.append(envelope)
    return f"{rel}: one DSSE envelope of {dsse.PAYLOAD_TYPE}"


def _signature(envelope: dsse.Envelope, pinned: str | None) -> str:
    if pinned is None:
        raise _Failed("the state database pins no audit key, so nothing can be verified")
    key = fingerprint(pinned)
    if dsse.signed_by(envelope, pinned):
        return f"signed by the workspace's audit key {key}"
    claimed = ", ".join(s.keyid or "(no keyid)" for s in envelope.signatures)
    if all(s.keyid != key for s in envelope.signatures):
        raise _Failed(
            f"the envelope is not signed by the workspace's audit key {key} (signed by {claimed})"
        )
    raise _Failed(f"the signature does not verify with the workspace's audit key {key}")


def _statement(payload: bytes, run_id: str, rows: tuple[ArtifactRow, ...]) -> str:
    try:
        value = parse_json(payload)
    except (ValueError, UnicodeDecodeError):
        raise _Failed("the payload is not JSON") from None
    if not isinstance(value, dict) or canonical_json(value) != payload:
        raise _Failed("the payload is not a statement in canonical JSON")
    for field, expected in (("_type", STATEMENT_TYPE), ("predicateType", PREDICATE_TYPE)):
        if value.get(field) != expected:
            raise _Failed(f"the statement's {field} is {value.get(field)!r}, not {expected}")
    predicate = value.get("predicate")
    if _at(predicate, "buildDefinition", "buildType") != BUILD_TYPE:
        raise _Failed(f"the statement's buildType is not {BUILD_TYPE}")
    invocation = _at(predicate, "runDetails", "metadata", "invocationId")
    if invocation != run_id:
        raise _Failed(f"the statement is for run {invocation!r}, not {run_id}")
    _same_subjects(value.get("subject"), rows)
    return f"an in-toto statement of run {run_id} with {len(rows)} subject(s)"


def _same_subjects(subjects: object, rows: tuple[ArtifactRow, ...]) -> None:
    if not isinstance(subjects, list):
        raise _Failed("the statement's subject is not a list")
    stated: dict[str, object] = {}
    for subject in subjects:
        name = subject.get("name") if isinstance(subject, dict) else None
        if not isinstance(name, str) or name in stated:
            raise _Failed("the statement's subjects are not distinct named entries")
        stated[name] = _at(subject, "digest", "sha256")
    recorded = {row.name: row.digest.removeprefix("sha256:") for row in rows}
    for name in sorted(stated.keys() - recorded.keys()):
        raise _Failed(f"subject {name} is in the statement but not recorded for the run")
    for name in sorted(recorded.keys() - stated.keys()):
        raise _Failed(f"artifact {name} is recorded for the run but not a subject of the statement")
    for name in sorted(recorded):
        if stated[name] != recorded[name]:
            raise _Failed(f"subject {name}: the statement's sha256 differs from the recorded one")


def _at(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
