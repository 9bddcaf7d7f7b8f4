"""Approval and denial records: their file format, how they are signed and read back."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler import keys
from reconciler.atomic import write_atomic
from reconciler.canonical import canonical_json
from reconciler.errors import Problem

APPROVALS_DIR = Path(".cloned") / "approvals"
RECORD_FORMAT_VERSION = 1
MAX_RECORD_BYTES = 64 * 1024

Verdict = Literal["approve", "deny"]

TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
"""`YYYY-MM-DDTHH:MM:SSZ`: the one spelling of a record's times (UTC, never naive)."""
REQUEST_ID = re.compile(r"[0-9a-f]{12}")
CHANGE_HASH = re.compile(r"sha256:[0-9a-f]{64}")


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

    @property
    def id(self) -> str:
        """What names this one signed record (not its file): the digest of all its fields,
        signature included. Signing again gives another id; the apply that uses an approval
        records this id as spent. The signature counts by the bytes it decodes to (in their one
        base64 spelling), so respelling it cannot make a spent record look new."""
        fields = {**self.to_json(), "signature": keys.canonical_base64(self.signature)}
        return "sha256:" + hashlib.sha256(canonical_json(fields)).hexdigest()


def record_path(root: Path, record: Record) -> Path:
    """`.cloned/approvals/<request id>/<approver>.json`: one verdict per approver and change."""
    return root / APPROVALS_DIR / record.request_id / f"{record.approver}.json"


def render(record: Record) -> bytes:
    """A record file's bytes: sorted keys, two-space indentation, a final newline."""
    return (json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n").encode()


def write(root: Path, record: Record) -> Path:
    """Write a record atomically (replacing the same approver's earlier verdict) and return it."""
    path = record_path(root, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render(record))
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
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            problems.append(Problem(rel, 0, 0, f"larger than {MAX_RECORD_BYTES:,} bytes"))
            return None
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(rel, 0, 0, f"cannot be read ({exc.strerror or exc})"))
        return None
    parsed = parse(data, rel)
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
    """One record from its file's bytes, or the problem with it: whatever the bytes, a record
    that parses is well-formed (its times are valid UTC times), so judging it cannot fail."""
    if len(data) > MAX_RECORD_BYTES:
        return Problem(rel, 0, 0, f"larger than {MAX_RECORD_BYTES:,} bytes")
    try:
        raw = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
        record = _from_json(raw)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        return Problem(rel, 0, 0, f"not a valid approval record ({exc})")
    return record


def _from_json(raw: object) -> Record:
    if not isinstance(raw, dict):
        raise TypeError("not a JSON object")
    fields = set(Record.__dataclass_fields__)
    unknown = sorted(set(raw) - fields)
    missing = sorted(fields - set(raw))
    if unknown or missing:
        raise TypeError(f"unknown fields {unknown}, missing fields {missing}")
    if not all(isinstance(raw[key], str) for key in fields - {"format_version"}):
        raise TypeError("every field but format_version must be a string")
    version = raw["format_version"]
    if type(version) is not int or version != RECORD_FORMAT_VERSION:
        raise ValueError(f"format_version must be {RECORD_FORMAT_VERSION}")
    if raw["verdict"] not in ("approve", "deny"):
        raise ValueError('verdict must be "approve" or "deny"')
    for key in ("signed_at", "expires_at"):
        if not TIME.fullmatch(raw[key]) or not _valid_time(raw[key]):
            raise ValueError(f"{key} must be a UTC time, YYYY-MM-DDTHH:MM:SSZ")
    if not REQUEST_ID.fullmatch(raw["request_id"]):
        raise ValueError("request_id must be 12 hex digits")
    if not CHANGE_HASH.fullmatch(raw["change_hash"]):
        raise ValueError("change_hash must be sha256: and 64 hex digits")
    try:
        keys.decode_canonical(raw["signature"])
    except ValueError:
        raise ValueError(
            "signature must be base64 in its one canonical spelling (as Cloned writes it)"
        ) from None
    return Record(**raw)


def _valid_time(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json's default keeps the last one)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
