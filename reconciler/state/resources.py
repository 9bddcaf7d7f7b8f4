"""Rows of the `resources` table: the applied state of every managed resource."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.state.db import Connection, StateDB


@dataclass(frozen=True)
class Row:
    """One applied resource; `state` is canonical JSON of {metadata, spec}."""

    address: str
    kind: str
    name: str
    state: str
    digest: str
    origin: str
    applied_at: str
    plan_id: str


def all_rows(db: StateDB) -> list[Row]:
    """Every applied resource, by address."""
    cursor = db.reader.execute(
        "SELECT address, kind, name, state, digest, origin, applied_at, plan_id "
        "FROM resources ORDER BY address"
    )
    return [Row(*values) for values in cursor.fetchall()]


def of_kind(db: StateDB, kind: str) -> list[Row]:
    """The applied resources of one kind, by address."""
    cursor = db.reader.execute(
        "SELECT address, kind, name, state, digest, origin, applied_at, plan_id "
        "FROM resources WHERE kind = ? ORDER BY address",
        (kind,),
    )
    return [Row(*values) for values in cursor.fetchall()]


def put(connection: Connection, row: Row) -> None:
    """Insert or replace one applied resource (inside the caller's transaction)."""
    connection.execute(
        "INSERT OR REPLACE INTO resources "
        "(address, kind, name, state, digest, origin, applied_at, plan_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.address,
            row.kind,
            row.name,
            row.state,
            row.digest,
            row.origin,
            row.applied_at,
            row.plan_id,
        ),
    )


def delete(connection: Connection, address: str) -> None:
    """Forget one applied resource (inside the caller's transaction)."""
    connection.execute("DELETE FROM resources WHERE address = ?", (address,))


def get(connection: Connection, address: str) -> Row | None:
    """One applied resource, read inside the caller's transaction."""
    found = connection.execute(
        "SELECT address, kind, name, state, digest, origin, applied_at, plan_id "
        "FROM resources WHERE address = ?",
        (address,),
    ).fetchone()
    return None if found is None else Row(*found)
