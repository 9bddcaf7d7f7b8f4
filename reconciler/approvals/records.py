"""Approval and denial records: their file format, how they are signed and read back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.atomic import write_atomic
from reconciler.canonical import canonical_json, parse_json
from reconciler.errors import Problem

APPROVALS_DIR = Path(".cloned") / "approvals"
RECORD_FORMAT_VERSION = 1
MAX_RECORD_BYTES = 64 * 1024

Verdict = Literal["approve", "deny"]


@dataclass(frozen=True)
class Record:
    """One approver's signed verdict on one change."""

    format_version: int
    verdict: Verdict
    workspace: str
    request_id: str
    change_hash: str
    address: str
    approver: str
    public_key: str
    signed_at: str
    expires_at: str
    comment: str
    signature: str = ""

    def signed_payload(self) -> bytes:
        """The bytes the signature covers: every field except the signature, canonical JSON."""
        fields = asdict(self)
        del fields["signature"]
        return canonical_json(fields)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def record_path(root: Path, record: Record) -> Path:
    """`.cloned/approvals/<request id>/<approver>.json`: one verdict per approver and change."""
    return root / APPROVALS_DIR / record.request_id / f"{record.approver}.json"


def write(root: Path, record: Record) -> Path:
    """Write a record atomically (replacing the same approver's earlier verdict) and return it."""
    path = record_path(root, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    write_atomic(path, text)
    return path


def read_all(root: Path) -> tuple[list[tuple[str, Record]], list[Problem]]:
    """Every record file under `.cloned/approvals/` (path relative to root), and unreadable ones."""
    folder = root / APPROVALS_DIR
    found: list[tuple[str, Record]] = []
    problems: list[Problem] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.rglob("*.json")):
        rel = str(path.relative_to(root))
        if path.is_symlink() or not path.is_file():
            problems.append(Problem(rel, 0, 0, "not a regular file"))
            continue
        record = _parse(path, rel, problems)
        if record is not None:
            found.append((rel, record))
    return found, problems


def _parse(path: Path, rel: str, problems: list[Problem]) -> Record | None:
    if path.stat().st_size > MAX_RECORD_BYTES:
        problems.append(Problem(rel, 0, 0, f"larger than {MAX_RECORD_BYTES:,} bytes"))
        return None
    parsed = parse(path.read_bytes(), rel)
    if isinstance(parsed, Problem):
        problems.append(parsed)
        return None
    return parsed


def read_committed(
    files: list[tuple[str, bytes]],
) -> tuple[list[tuple[str, Record]], list[Problem]]:
    """The records among files read from git (paths relative to the root), like `read_all`."""
    prefix = APPROVALS_DIR.as_posix() + "/"
    found: list[tuple[str, Record]] = []
    problems: list[Problem] = []
    for rel, data in sorted(files):
        if not rel.startswith(prefix) or not rel.endswith(".json"):
            continue
        if len(data) > MAX_RECORD_BYTES:
            problems.append(Problem(rel, 0, 0, f"larger than {MAX_RECORD_BYTES:,} bytes"))
            continue
        parsed = parse(data, rel)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        else:
            found.append((rel, parsed))
    return found, problems


def parse(data: bytes, rel: str) -> Record | Problem:
    """One record from its file's bytes, or the problem with it."""
    try:
        raw = parse_json(data.decode("utf-8"))
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        fields = set(Record.__dataclass_fields__)
        unknown = sorted(set(raw) - fields)
        missing = sorted(fields - set(raw))
        if unknown or missing:
            raise TypeError(f"unknown fields {unknown}, missing fields {missing}")
        if not all(isinstance(raw[key], str) for key in fields - {"format_version"}):
            raise TypeError("every field but format_version must be a string")
        record = Record(**raw)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        return Problem(rel, 0, 0, f"not a valid approval record ({exc})")
    if record.format_version != RECORD_FORMAT_VERSION or record.verdict not in ("approve", "deny"):
        return Problem(rel, 0, 0, "unsupported record version or verdict")
    return record
