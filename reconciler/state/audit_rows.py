"""Audit rows in the state database: the only SQL that touches `audit_events` and the audit's
`meta` keys. `reconciler.audit` builds, hashes and verifies events; this module stores and reads
them as plain tuples, so the hot verification loop pays for no object per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import NamedTuple, TypeAlias

from reconciler.errors import StateUnavailable

Connection: TypeAlias = sqlite3.Connection
"""The connection `StateDB.transaction()` yields; re-exported so callers need not import sqlite3."""

EXPORTED_SEQ = "audit_exported_seq"
"""meta key: the last seq written to a committed segment under `.cloned/audit/segments/`."""
PUBLIC_KEY = "audit_public_key"
"""meta key: the OpenSSH public key line of the workspace's audit key, pinned at its creation."""


class AuditRow(NamedTuple):
    """One stored event; `payload` is the canonical JSON text of the (redacted) payload."""

    seq: int
    ts: str
    actor: str
    type: str
    subject: str
    payload: str
    prev_hash: str
    hash: str


def head(connection: Connection) -> tuple[int, str] | None:
    """The (seq, hash) of the last event, or None when the log is empty."""
    row = connection.execute(
        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def hash_at(connection: Connection, seq: int) -> str | None:
    """The stored hash of event `seq`, or None."""
    row = connection.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def insert(connection: Connection, row: AuditRow) -> None:
    """Store one event (the caller's transaction commits it)."""
    connection.execute(
        "INSERT INTO audit_events (seq, ts, actor, type, subject, payload, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )


def count(connection: Connection) -> int:
    """How many events are stored."""
    return int(connection.execute("SELECT count(*) FROM audit_events").fetchone()[0])


def scan(connection: Connection, *, after: int = 0, until: int | None = None) -> Iterator[AuditRow]:
    """Events after `after` (up to `until`), in seq order, streamed (as stored, unchecked)."""
    cursor = connection.execute(
        "SELECT seq, ts, actor, type, subject, payload, prev_hash, hash FROM audit_events "
        "WHERE seq > ? AND seq <= ? ORDER BY seq",
        (after, until if until is not None else 2**63 - 1),
    )
    try:
        while batch := cursor.fetchmany(4096):
            for row in batch:
                yield AuditRow._make(row)
    except sqlite3.DatabaseError as exc:
        raise StateUnavailable(f"the state database cannot be read ({exc})") from None


def select(
    connection: Connection,
    *,
    since_seq: int | None = None,
    since_ts: str | None = None,
    type_prefix: str | None = None,
    subject: str | None = None,
) -> list[AuditRow]:
    """Events matching every given filter, in seq order.

    `type_prefix` matches a type exactly or as a dotted prefix (`approval` matches
    `approval.granted`); `since_ts` compares RFC 3339 UTC stamps, which sort as text.
    """
    clauses: list[str] = []
    values: list[object] = []
    if since_seq is not None:
        clauses.append("seq >= ?")
        values.append(since_seq)
    if since_ts is not None:
        clauses.append("ts >= ?")
        values.append(since_ts)
    if type_prefix is not None:
        clauses.append("(type = ? OR substr(type, 1, ?) = ?)")
        values += [type_prefix, len(type_prefix) + 1, type_prefix + "."]
    if subject is not None:
        clauses.append("subject = ?")
        values.append(subject)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    query = "SELECT seq, ts, actor, type, subject, payload, prev_hash, hash FROM audit_events"
    cursor = connection.execute(query + where + " ORDER BY seq", values)
    return [AuditRow._make(row) for row in cursor.fetchall()]
