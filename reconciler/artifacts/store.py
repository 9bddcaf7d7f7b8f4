"""The artifact store: a run's outputs as content-addressed files under `.cloned/state/`.

`artifacts/sha256/HEX` holds the bytes whose sha256 is HEX, written once through
`reconciler.atomic.write_atomic` (0600 in 0700 folders, a temporary renamed into place) and
never rewritten: the same bytes from any run are one file. Reading re-hashes the file and
refuses bytes that no longer match their name, so a changed file is reported, never served.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from reconciler.atomic import STATE_DIR, write_atomic
from reconciler.errors import ClonedError

ARTIFACTS_DIR = STATE_DIR / "artifacts"
OBJECTS_DIR = ARTIFACTS_DIR / "sha256"
RUNS_DIR = ARTIFACTS_DIR / "runs"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class ArtifactDamaged(ClonedError):
    """A stored artifact is missing, or its bytes no longer have the digest it is stored by."""


def digest_of(data: bytes) -> str:
    """`sha256:HEX` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def object_path(root: Path, digest: str) -> Path:
    """Where the bytes with `digest` (`sha256:HEX`) are stored in the workspace at `root`."""
    if not DIGEST.fullmatch(digest):
        raise ClonedError(f"not an artifact digest: {digest[:80]!r} (sha256: and 64 hex digits)")
    return root / OBJECTS_DIR / digest.removeprefix("sha256:")


def put(root: Path, data: bytes) -> str:
    """Store `data` (once: an existing file with the same digest is kept) and return its digest.

    An existing file whose bytes no longer match is refused rather than silently kept."""
    digest = digest_of(data)
    path = object_path(root, digest)
    if path.exists():
        read(root, digest)
        return digest
    write_atomic(path, data)
    return digest


def read(root: Path, digest: str) -> bytes:
    """The bytes stored under `digest`, re-hashed; missing or changed bytes are an error."""
    path = object_path(root, digest)
    rel = path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactDamaged(f"{rel}: the artifact file is missing") from None
    except OSError as exc:
        raise ArtifactDamaged(f"{rel}: cannot be read ({exc.strerror})") from None
    found = digest_of(data)
    if found != digest:
        raise ArtifactDamaged(
            f"{rel}: the file's bytes have changed (they hash to {found})",
            hint="the artifact cannot be trusted; re-run the pipeline to produce it again",
        )
    return data


def envelope_path(root: Path, run_id: str) -> Path:
    """The run's signed provenance: `artifacts/runs/RUN_ID.intoto.jsonl`."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith(".") or "\0" in run_id:
        raise ClonedError(f"not a run id: {run_id[:80]!r}")
    return root / RUNS_DIR / f"{run_id}.intoto.jsonl"
