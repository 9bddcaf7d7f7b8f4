"""Exporting the log: new events to a committed segment, plus a signed checkpoint of the head.

Called by apply after its last step (its files then go into the audit commit). The whole export
runs inside one state transaction: events not yet exported are re-checked, written to
`segments/<first>-<last>.jsonl`, the head is signed and appended to `checkpoints.jsonl`, and only
then does `meta` record the new exported seq. A crash before that commit leaves files the next
export recognises (they hold exactly the database's events) and replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.atomic import write_atomic
from reconciler.audit.chain import verify_rows
from reconciler.audit.checkpoints import parse_checkpoint
from reconciler.audit.event import GENESIS, line_text
from reconciler.audit.files import (
    CHECKPOINTS_FILE,
    SEGMENTS_DIR,
    Checkpoint,
    list_segments,
    read_lines,
    segment_name,
)
from reconciler.audit.signing import Signer, pin, workspace_signer
from reconciler.clock import stamp
from reconciler.errors import ClonedError
from reconciler.state import audit_rows, meta
from reconciler.state.audit_rows import AuditRow, Connection
from reconciler.state.db import StateDB

_HINT = "run `cloned audit verify` to see what differs"


@dataclass(frozen=True)
class ExportResult:
    """What an export did; `files` and `removed` are what the audit commit must include."""

    first: int | None
    last: int | None
    head: str | None
    files: tuple[Path, ...]
    removed: tuple[Path, ...] = ()


def export(db: StateDB, root: Path, *, signer: Signer | None = None) -> ExportResult:
    """Write every event not yet exported to a new segment and sign a checkpoint of the head.

    `signer` defaults to the workspace's audit key (`.cloned/state/audit-key`, made on first use).
    """
    if signer is None:
        signer = workspace_signer(db, root)
    with db.transaction() as connection:
        pin(connection, signer)
        exported = _exported_seq(connection)
        removed = _drop_unfinished_segments(root, connection, exported)
        checkpoint_lines = _kept_checkpoints(root, connection, exported)
        rows = list(audit_rows.scan(connection, after=exported))
        if not rows:
            return ExportResult(None, None, None, (), removed)
        _check_tail(connection, rows, exported)
        first, last = rows[0], rows[-1]
        segment = root / SEGMENTS_DIR / segment_name(first.seq, last.seq)
        write_atomic(segment, "".join(line_text(row) + "\n" for row in rows).encode())
        checkpoint = Checkpoint(last.seq, last.hash, stamp(), signer.public_key)
        checkpoint = _signed(checkpoint, signer)
        checkpoints = root / CHECKPOINTS_FILE
        text = "".join(line + "\n" for line in [*checkpoint_lines, checkpoint.line()])
        write_atomic(checkpoints, text.encode())
        meta.set_meta(connection, audit_rows.EXPORTED_SEQ, str(last.seq))
    return ExportResult(first.seq, last.seq, last.hash, (segment, checkpoints), removed)


def _signed(checkpoint: Checkpoint, signer: Signer) -> Checkpoint:
    import base64

    signature = base64.b64encode(signer.sign(checkpoint.signed_message())).decode()
    return Checkpoint(checkpoint.seq, checkpoint.hash, checkpoint.ts, checkpoint.key, signature)


def _exported_seq(connection: Connection) -> int:
    value = meta.get_meta(connection, audit_rows.EXPORTED_SEQ) or "0"
    if not value.isdigit():
        raise ClonedError(f"state database: {audit_rows.EXPORTED_SEQ} is not a number ({value!r})")
    return int(value)


def _check_tail(connection: Connection, rows: list[AuditRow], exported: int) -> None:
    """Never sign a head whose new events do not verify: that would launder a tampered row."""
    prev = audit_rows.hash_at(connection, exported) if exported else GENESIS
    finding = verify_rows(rows, after=exported, prev=prev or "").finding
    if finding is not None:
        raise ClonedError(f"{finding.message}; nothing was exported", hint=_HINT)


def _drop_unfinished_segments(
    root: Path, connection: Connection, exported: int
) -> tuple[Path, ...]:
    """Delete segments past the exported seq that an interrupted export left behind."""
    removed: list[Path] = []
    segments, _strays = list_segments(root)
    for segment in segments:
        if segment.first <= exported:
            continue
        path = root / segment.rel
        rows = audit_rows.scan(connection, after=segment.first - 1, until=segment.last)
        expected = [line_text(row) for row in rows]
        if len(expected) != segment.last - segment.first + 1 or read_lines(path) != expected:
            raise ClonedError(
                f"{segment.rel} holds events that are not in this state database "
                f"(it exported up to event {exported}); nothing was exported",
                hint=_HINT,
            )
        path.unlink()
        removed.append(path)
    return tuple(removed)


def _kept_checkpoints(root: Path, connection: Connection, exported: int) -> list[str]:
    """The checkpoint lines to keep: those up to the exported seq (later ones were unfinished)."""
    path = root / CHECKPOINTS_FILE
    if not path.exists():
        return []
    kept: list[str] = []
    for number, text in enumerate(read_lines(path), 1):
        checkpoint = parse_checkpoint(text)
        if isinstance(checkpoint, str) or checkpoint.seq <= exported:
            kept.append(text)
        elif audit_rows.hash_at(connection, checkpoint.seq) != checkpoint.hash:
            raise ClonedError(
                f"{CHECKPOINTS_FILE.as_posix()} line {number} covers event {checkpoint.seq}, "
                "which this state database does not hold; nothing was exported",
                hint=_HINT,
            )
    return kept
