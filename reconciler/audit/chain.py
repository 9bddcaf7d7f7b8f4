"""Checking one hash chain: the state database's rows, or the committed segment files.

Each check walks its events in order and stops at the first bad one, which it reports as a
`Finding` naming the event, the place (file and line) and what is wrong. The hot loops work on
stored text (no event objects, one sha256 per event) so that verification is I/O bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.audit.event import (
    FIELDS,
    GENESIS,
    body_text,
    hash_text,
    json_string,
    payload_text,
)
from reconciler.audit.files import Segment, read_lines
from reconciler.canonical import parse_json
from reconciler.state.audit_rows import AuditRow

DATABASE = "state database"
_FIELD_SET = frozenset(FIELDS)
_TEXT_FIELDS = ("actor", "hash", "prev_hash", "subject", "ts", "type")


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the log; `seq` is the first event it concerns (None: no event)."""

    message: str
    seq: int | None = None
    file: str | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """As `cloned audit verify --json` reports it."""
        return {"seq": self.seq, "file": self.file, "line": self.line, "message": self.message}


@dataclass
class Chain:
    """What a check established: the hashes of the events that verified, in seq order."""

    hashes: list[str] = field(default_factory=list)
    first: int = 1
    """The seq of `hashes[0]`."""
    finding: Finding | None = None
    end: int = 0
    """The last seq the source holds, as far as the check could tell."""
    lines: list[bytes] = field(default_factory=list)
    """sha256 of each verified event's canonical line (database chains only), so that a segment
    line equal to the database's copy is verified without parsing it."""

    def hash_of(self, seq: int) -> str | None:
        """The verified hash of event `seq`, or None when it is not in the verified prefix."""
        index = seq - self.first
        return self.hashes[index] if 0 <= index < len(self.hashes) else None

    def line_digest(self, seq: int) -> bytes | None:
        """The sha256 of event `seq`'s canonical line, when known."""
        index = seq - self.first
        return self.lines[index] if 0 <= index < len(self.lines) else None


def missing(first: int, last: int) -> str:
    """`event 7 is missing` / `events 7-9 are missing`."""
    return f"event {first} is missing" if first == last else f"events {first}-{last} are missing"


def verify_rows(
    rows: Iterable[AuditRow], *, after: int = 0, prev: str = GENESIS, lines: bool = False
) -> Chain:
    """Check the database's chain: seq contiguous, every hash recomputes, every link holds.

    By default from event 1; `after` and `prev` (the hash of event `after`) check a tail. With
    `lines`, also keep the digest of each event's canonical line (`Chain.lines`).
    """
    chain = Chain(first=after + 1)
    hashes, digests = chain.hashes, chain.lines
    expected = after + 1
    for row in rows:
        seq, ts, actor, type_, subject, payload, prev_hash, stored = row
        if seq != expected:
            chain.finding = Finding(
                f"{missing(expected, seq - 1)} from the {DATABASE}: after event {expected - 1} "
                f"comes event {seq}",
                expected,
            )
            break
        try:
            body = body_text(seq, ts, actor, type_, subject, payload, prev_hash)
        except TypeError:
            chain.finding = Finding(f"event {seq} ({DATABASE}): a field is not text", seq)
            break
        if hash_text(body) != stored:
            chain.finding = Finding(
                f"event {seq} ({DATABASE}): hash does not match its content", seq
            )
            break
        if prev_hash != prev:
            chain.finding = Finding(f"event {seq} ({DATABASE}): {_bad_link(seq)}", seq)
            break
        hashes.append(stored)
        if lines:
            cut = 9 + len(json_string(actor))  # after '{"actor":' and the actor
            line = f'{body[:cut]},"hash":{json_string(stored)}{body[cut:]}'
            digests.append(hashlib.sha256(line.encode()).digest())
        prev, expected = stored, expected + 1
    return chain


def _bad_link(seq: int) -> str:
    if seq == 1:
        return "prev_hash is not the start of a chain"
    return f"prev_hash does not link to event {seq - 1}"


def verify_segments(root: Path, segments: list[Segment], database: Chain | None) -> Chain:
    """Check the segment files as one chain, and each event against the database's copy."""
    chain = Chain()
    walk = _Walk(chain, database)
    for segment in segments:
        if not walk.segment(root, segment):
            # The walk stopped early: trust the names for where the log ends, so that a
            # truncation is reported once, by the walk, and not again by the checkpoints.
            chain.end = max(walk.expected - 1, *(segment.last for segment in segments))
            return chain
    chain.end = walk.expected - 1
    return chain


class _Walk:
    """The state of one walk through the segments: next seq, previous hash."""

    def __init__(self, chain: Chain, database: Chain | None) -> None:
        self.chain = chain
        self.database = database
        self.expected = 1
        self.prev = GENESIS

    def fail(self, message: str, seq: int | None, rel: str | None, line: int | None) -> bool:
        self.chain.finding = Finding(message, seq, rel, line)
        return False

    def segment(self, root: Path, segment: Segment) -> bool:
        """Check one file; False once something is wrong."""
        rel = segment.rel
        if segment.first != self.expected:
            return self._misplaced(segment)
        try:
            lines = read_lines(root / rel)
        except (OSError, UnicodeDecodeError) as exc:
            return self.fail(f"{rel}: cannot be read ({exc})", self.expected, rel, None)
        for number, text in enumerate(lines, 1):
            if not self.line(segment, lines, number, text):
                return False
        if self.expected <= segment.last:
            return self.fail(
                f"{missing(self.expected, segment.last)}: {rel} ends at event "
                f"{self.expected - 1} but its name says {segment.last}",
                self.expected,
                rel,
                None,
            )
        return True

    def _misplaced(self, segment: Segment) -> bool:
        rel, expected = segment.rel, self.expected
        if segment.first > expected:
            before = (
                f"the first segment, {rel},"
                if expected == 1
                else f"the previous segment ends at {expected - 1} and {rel}"
            )
            return self.fail(
                f"{missing(expected, segment.first - 1)}: {before} starts at {segment.first}",
                expected,
                rel,
                None,
            )
        return self.fail(
            f"event {segment.first} ({rel}): the segment overlaps the previous one, which "
            f"ends at {expected - 1}",
            segment.first,
            rel,
            None,
        )

    def line(self, segment: Segment, lines: list[str], number: int, text: str) -> bool:
        """Check one line; False once something is wrong."""
        seq, rel = self.expected, segment.rel
        if seq <= segment.last and self._same_as_database(seq, text):
            return True
        where = f"event {seq} ({rel} line {number})"
        parsed = parse_line(text)
        if isinstance(parsed, str):
            return self.fail(f"{where}: {parsed}", seq, rel, number)
        found, digest, prev_hash, problem = parsed
        if found != seq:
            return self._out_of_place(segment, lines, number, found)
        if seq > segment.last:
            return self.fail(
                f"{where}: beyond the range the file's name says ({segment.first}-{segment.last})",
                seq,
                rel,
                number,
            )
        if problem:
            return self.fail(f"{where}: {problem}", seq, rel, number)
        if prev_hash != self.prev:
            return self.fail(f"{where}: {_bad_link(seq)}", seq, rel, number)
        stored = self.database.hash_of(seq) if self.database else None
        if stored is not None and stored != digest:
            return self.fail(
                f"event {seq} differs between the {DATABASE} and {rel} line {number}",
                seq,
                rel,
                number,
            )
        self.chain.hashes.append(digest)
        self.prev, self.expected = digest, seq + 1
        return True

    def _same_as_database(self, seq: int, text: str) -> bool:
        """Accept a line byte-for-byte equal to the database's verified copy (the fast path)."""
        known = self.database.line_digest(seq) if self.database is not None else None
        if known is None or hashlib.sha256(text.encode()).digest() != known:
            return False
        digest = self.database.hash_of(seq)  # type: ignore[union-attr]
        assert digest is not None
        self.chain.hashes.append(digest)
        self.prev, self.expected = digest, seq + 1
        return True

    def _out_of_place(self, segment: Segment, lines: list[str], number: int, found: int) -> bool:
        seq, rel = self.expected, segment.rel
        for later, text in enumerate(lines[number:], number + 1):
            parsed = parse_line(text)
            if not isinstance(parsed, str) and parsed[0] == seq:
                return self.fail(
                    f"event {seq} ({rel} line {later}) is out of order: line {number} holds "
                    f"event {found}",
                    seq,
                    rel,
                    later,
                )
        return self.fail(
            f"event {seq} is missing from {rel}: line {number} holds event {found}",
            seq,
            rel,
            number,
        )


def parse_line(text: str) -> tuple[int, str, str, str] | str:
    """(seq, hash, prev_hash, problem) of a segment line, or what makes it no event at all.

    `problem` is "" when the hash recomputes and the line is in canonical form. The fast path
    cuts the `"hash"` member out of the line and hashes what is left: when that matches, the
    line is exactly the canonical text the writer produced.
    """
    try:
        event = parse_json(text)
    except ValueError:
        return "not valid JSON"
    shape = _shape_problem(event)
    if shape:
        return shape
    seq, digest = event["seq"], event["hash"]
    prefix = '{"actor":' + json_string(event["actor"])
    member = ',"hash":' + json_string(digest)
    if (
        text.startswith(prefix)
        and text.startswith(member + ",", len(prefix))
        and hash_text(prefix + text[len(prefix) + len(member) :]) == digest
    ):
        return seq, digest, event["prev_hash"], ""
    return seq, digest, event["prev_hash"], _slow_problem(event)


def _shape_problem(event: Any) -> str:
    if not isinstance(event, dict):
        return "not a JSON object"
    if event.keys() != _FIELD_SET:
        absent = sorted(_FIELD_SET - event.keys())
        if absent:
            return f"not an audit event (no field {absent[0]!r})"
        return f"not an audit event (unexpected field {sorted(event.keys() - _FIELD_SET)[0]!r})"
    seq = event["seq"]
    if type(seq) is not int or seq < 1:
        return "not an audit event (seq is not a positive integer)"
    for name in _TEXT_FIELDS:
        if not isinstance(event[name], str):
            return f"not an audit event ({name} is not a string)"
    if not isinstance(event["payload"], dict):
        return "not an audit event (payload is not an object)"
    return ""


def _slow_problem(event: dict[str, Any]) -> str:
    try:
        payload = payload_text(event["payload"])
    except ValueError:
        return "hash does not match its content"
    body = body_text(
        event["seq"],
        event["ts"],
        event["actor"],
        event["type"],
        event["subject"],
        payload,
        event["prev_hash"],
    )
    if hash_text(body) != event["hash"]:
        return "hash does not match its content"
    return "not in canonical form (sorted keys, no spaces, one line)"
