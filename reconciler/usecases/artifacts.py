"""`artifacts list|show|verify`: the outputs runs published, and the proof of where they came from.

Reads the `artifacts` rows of the state database and the content-addressed files under
`.cloned/state/artifacts/` (reconciler.artifacts); `verify` checks a run's files, its DSSE
envelope's signature with the pinned audit key, and its in-toto statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.artifacts import store
from reconciler.artifacts.verify import Check, Verification, verify_run
from reconciler.errors import ClonedError, ExitCode
from reconciler.load.files import find_root
from reconciler.state import artifact_rows
from reconciler.state.artifact_rows import ArtifactRow
from reconciler.state.db import StateDB

__all__ = [
    "ArtifactList",
    "ArtifactShown",
    "ArtifactVerified",
    "Check",
    "list_artifacts",
    "show",
    "verify",
]

_DIGEST_PREFIX = re.compile(r"(sha256:)?[0-9a-f]{8,64}")
_LIST_HINT = "list them with `cloned artifacts list`"


def _row_json(row: ArtifactRow) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "name": row.name,
        "digest": row.digest,
        "media_type": row.media_type,
        "size": row.size,
        "created_at": row.created_at,
        "path": store.object_path(Path(), row.digest).as_posix(),
    }


@dataclass(frozen=True)
class ArtifactList:
    """The recorded artifacts, newest first (of one run, with `run`)."""

    artifacts: tuple[ArtifactRow, ...]
    run: str | None
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"artifacts": [_row_json(row) for row in self.artifacts]}


@dataclass(frozen=True)
class ArtifactShown:
    """One artifact: its row and its bytes (re-hashed when read)."""

    artifact: ArtifactRow
    content: bytes
    exit_code: ExitCode = ExitCode.OK

    @property
    def is_text(self) -> bool:
        """Whether the bytes are text to print (UTF-8 text or JSON)."""
        kind = self.artifact.media_type.split(";")[0].strip()
        return kind.startswith("text/") or kind == "application/json"

    def to_json(self) -> dict[str, Any]:
        return _row_json(self.artifact)


@dataclass(frozen=True)
class ArtifactVerified:
    """The verification of one run's artifacts and provenance."""

    verification: Verification

    @property
    def ok(self) -> bool:
        return self.verification.ok

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.ERROR

    def to_json(self) -> dict[str, Any]:
        return self.verification.to_json()


def list_artifacts(*, path: Path, run: str | None = None) -> ArtifactList:
    """Every artifact recorded in the workspace containing `path` (or those of run `run`)."""
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            return ArtifactList((), run)
        rows = artifact_rows.of_run(db.reader, run) if run else artifact_rows.every(db.reader)
    return ArtifactList(tuple(rows), run)


def show(*, path: Path, ref: str, run: str | None = None) -> ArtifactShown:
    """The artifact `ref` names (its name, or a digest or its first 8+ hex digits), read back
    and re-hashed; `run` narrows a name to one run."""
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            raise ClonedError("no artifacts here: nothing is applied yet", hint=_LIST_HINT)
        row = _find(db, ref, run)
    return ArtifactShown(row, store.read(root, row.digest))


def verify(*, path: Path, run_id: str) -> ArtifactVerified:
    """Verify run `run_id`'s artifact files, signed envelope and statement."""
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            raise ClonedError(f"no artifacts are recorded for run {run_id}: nothing is applied yet")
        return ArtifactVerified(verify_run(root, db, run_id))


def _find(db: StateDB, ref: str, run: str | None) -> ArtifactRow:
    rows = [row for row in artifact_rows.named(db.reader, ref) if run in (None, row.run_id)]
    if not rows and _DIGEST_PREFIX.fullmatch(ref):
        prefix = ref if ref.startswith("sha256:") else f"sha256:{ref}"
        rows = [
            row for row in artifact_rows.with_digest(db.reader, prefix) if run in (None, row.run_id)
        ]
        if len({row.digest for row in rows}) > 1:
            raise ClonedError(f"{ref} is the start of more than one artifact digest; give more")
        # The same bytes in several runs are one artifact: show the newest record of them.
        rows = rows[:1]
    where = f" in run {run}" if run else ""
    if not rows:
        raise ClonedError(f"no artifact named or with digest {ref}{where}", hint=_LIST_HINT)
    if len(rows) > 1:
        runs = ", ".join(row.run_id for row in rows)
        raise ClonedError(
            f"more than one run has an artifact named {ref} ({runs})",
            hint="choose one with --run ID",
        )
    return rows[0]
