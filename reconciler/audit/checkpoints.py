"""Checking `checkpoints.jsonl`: signatures, the audit key, and what each checkpoint covers.

A checkpoint signs (seq, hash) of the chain head at an export. It is what makes truncation and
wholesale rewrites of the committed log detectable: a log that ends before the last checkpoint,
or whose event at a checkpoint's seq has another hash, no longer matches what was signed.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.audit.chain import DATABASE, Chain, Finding, missing
from reconciler.audit.files import CHECKPOINT_FIELDS, CHECKPOINTS_FILE, Checkpoint, read_lines
from reconciler.audit.signing import fingerprint, same_key, signature_valid
from reconciler.canonical import parse_json

REL = CHECKPOINTS_FILE.as_posix()


def parse_checkpoint(text: str) -> Checkpoint | str:
    """A checkpoint line, or what makes it no checkpoint."""
    try:
        value = parse_json(text)
    except ValueError:
        return "not valid JSON"
    if not isinstance(value, dict) or sorted(value) != list(CHECKPOINT_FIELDS):
        return f"not a checkpoint (the fields are {', '.join(CHECKPOINT_FIELDS)})"
    seq = value["seq"]
    if type(seq) is not int or seq < 1:
        return "not a checkpoint (seq is not a positive integer)"
    if not all(isinstance(value[name], str) for name in CHECKPOINT_FIELDS if name != "seq"):
        return "not a checkpoint (hash, key, signature and ts are strings)"
    return Checkpoint(seq, value["hash"], value["ts"], value["key"], value["signature"])


def load_checkpoints(root: Path) -> tuple[list[str], Finding | None]:
    """The lines of the checkpoints file ([] when there is none), or why it cannot be read."""
    path = root / CHECKPOINTS_FILE
    if not path.exists():
        return [], None
    try:
        return read_lines(path), None
    except (OSError, UnicodeDecodeError) as exc:
        return [], Finding(f"{REL}: cannot be read ({exc})", None, REL)


def check_checkpoints(
    lines: list[str],
    *,
    pinned: str | None,
    log: Chain,
    database: Chain | None,
    unsigned_from: int | None = None,
) -> list[Finding]:
    """Check every checkpoint in order (stopping at the first bad one), then truncation."""
    key, last_seq, last_number = pinned, 0, 0
    for number, text in enumerate(lines, 1):
        where = f"checkpoint {number} ({REL} line {number})"
        checkpoint = parse_checkpoint(text)
        if isinstance(checkpoint, str):
            return [Finding(f"{where}: {checkpoint}", None, REL, number)]
        seq = checkpoint.seq
        if key is None:
            key = checkpoint.key
        elif not same_key(checkpoint.key, key):
            trusted = (
                f"pinned {fingerprint(key)}" if pinned else f"checkpoint 1: {fingerprint(key)}"
            )
            which = "this workspace's audit key" if pinned else "the key of checkpoint 1"
            return [
                Finding(
                    f"{where}: signed with a key that is not {which} "
                    f"({fingerprint(checkpoint.key)}; {trusted})",
                    seq,
                    REL,
                    number,
                )
            ]
        if not signature_valid(checkpoint.key, checkpoint.signed_message(), checkpoint.signature):
            return [Finding(f"{where}: signature does not verify", seq, REL, number)]
        if seq <= last_seq:
            return [
                Finding(
                    f"{where}: covers event {seq}, not after checkpoint {last_number} "
                    f"(event {last_seq})",
                    seq,
                    REL,
                    number,
                )
            ]
        known = log.hash_of(seq) or (database.hash_of(seq) if database else None)
        if known is not None and known != checkpoint.hash:
            return [Finding(f"event {seq} does not match {where}", seq, REL, number)]
        last_seq, last_number = seq, number
    return _truncation(last_seq, last_number, log, database, unsigned_from)


def _truncation(
    last_seq: int, number: int, log: Chain, database: Chain | None, unsigned_from: int | None
) -> list[Finding]:
    """The log must reach the last checkpoint, and every committed event must be signed
    (except a tail from `unsigned_from` on, left by an export that was interrupted)."""
    found: list[Finding] = []
    interrupted = unsigned_from is not None and last_seq >= unsigned_from
    if 0 < last_seq < log.end and log.finding is None and not interrupted:
        found.append(
            Finding(
                f"{_events(last_seq + 1, log.end)} not covered by any checkpoint: the last one, "
                f"checkpoint {number}, covers {last_seq}",
                last_seq + 1,
                REL,
                number,
            )
        )
    if last_seq > log.end:
        ends = f"the log ends at {log.end}" if log.end else "the committed log is empty"
        found.append(
            Finding(
                f"{missing(log.end + 1, last_seq)}: {ends} but checkpoint {number} covers "
                f"{last_seq}",
                log.end + 1,
                REL,
                number,
            )
        )
    if database is not None and last_seq > database.end:
        found.append(
            Finding(
                f"{missing(database.end + 1, last_seq)} from the {DATABASE}: it ends at "
                f"{database.end} but checkpoint {number} covers {last_seq}",
                database.end + 1,
                REL,
                number,
            )
        )
    return found


def _events(first: int, last: int) -> str:
    return f"event {first} is" if first == last else f"events {first}-{last} are"
