"""Rows of the `approval_requests` table."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import ClonedError
from reconciler.state.db import Connection, StateDB

_SELECT = (
    "SELECT id, change_hash, address, action, change, rules, author, status, created_at, "
    "updated_at, superseded_by FROM approval_requests "
)


@dataclass(frozen=True)
class RequestRow:
    """One approval request; `change` and `rules` are JSON text."""

    id: str
    change_hash: str
    address: str
    action: str
    change: str
    rules: str
    author: str
    status: str
    created_at: str
    updated_at: str
    superseded_by: str | None


def by_hash(connection: Connection, change_hash: str) -> RequestRow | None:
    """The request for exactly this change, if one was opened."""
    row = connection.execute(
        _SELECT + "WHERE change_hash = ?",
        (change_hash,),
    ).fetchone()
    return RequestRow(*row) if row else None


ACTIVE = ("pending", "denied", "expired")
"""Statuses of a request that still speaks for its change (a newer version supersedes it)."""


def active(connection: Connection, address: str | None = None) -> list[RequestRow]:
    """Requests that are still open, for one address or for all."""
    query = _SELECT + "WHERE status IN ('pending', 'denied', 'expired')"
    if address is None:
        return [RequestRow(*row) for row in connection.execute(query).fetchall()]
    cursor = connection.execute(query + " AND address = ?", (address,))
    return [RequestRow(*row) for row in cursor.fetchall()]


def insert(connection: Connection, row: RequestRow) -> None:
    """Record a new request."""
    connection.execute(
        "INSERT INTO approval_requests (id, change_hash, address, action, change, rules, author, "
        "status, created_at, updated_at, superseded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.id,
            row.change_hash,
            row.address,
            row.action,
            row.change,
            row.rules,
            row.author,
            row.status,
            row.created_at,
            row.updated_at,
            row.superseded_by,
        ),
    )


def set_status(
    connection: Connection, request_id: str, status: str, at: str, superseded_by: str | None = None
) -> None:
    """Move a request to a new status (`superseded_by` is recorded as given, NULL included)."""
    connection.execute(
        "UPDATE approval_requests SET status = ?, updated_at = ?, superseded_by = ? WHERE id = ?",
        (status, at, superseded_by, request_id),
    )


def all_requests(db: StateDB) -> list[RequestRow]:
    """Every request, newest first."""
    cursor = db.reader.execute(_SELECT + "ORDER BY created_at DESC, id")
    return [RequestRow(*row) for row in cursor.fetchall()]


def find(db: StateDB, prefix: str) -> RequestRow:
    """The request whose id starts with `prefix`; a clear error when none or several match."""
    cursor = db.reader.execute(
        _SELECT + "WHERE id LIKE ? || '%' ESCAPE '\\'",
        (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"),),
    )
    rows = [RequestRow(*row) for row in cursor.fetchall()]
    if not rows:
        raise ClonedError(
            f'no approval request "{prefix}"', hint="list them with `cloned approvals list`"
        )
    if len(rows) > 1:
        raise ClonedError(f'"{prefix}" matches {len(rows)} requests; give more of the id')
    return rows[0]
