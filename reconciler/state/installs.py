"""Rows of the `installs` table: what is installed for each applied Connector (its entry in
the content-addressed store, its environment) and when it last verified. The Connector
provider writes them in the same transaction as the resource row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.state.db import Connection, StateDB


@dataclass(frozen=True)
class Install:
    """One applied connector's install record."""

    address: str
    record: dict[str, Any]
    verified_at: str
    verified_ok: bool


def all_installs(db: StateDB) -> dict[str, Install]:
    """Every install record, by address."""
    cursor = db.reader.execute(
        "SELECT address, record, verified_at, verified_ok FROM installs ORDER BY address"
    )
    return {
        address: Install(address, json.loads(record), verified_at, bool(ok))
        for address, record, verified_at, ok in cursor.fetchall()
    }


def put(connection: Connection, install: Install) -> None:
    """Insert or replace one install record (inside the caller's transaction)."""
    connection.execute(
        "INSERT OR REPLACE INTO installs (address, record, verified_at, verified_ok) "
        "VALUES (?, ?, ?, ?)",
        (
            install.address,
            json.dumps(install.record, sort_keys=True),
            install.verified_at,
            int(install.verified_ok),
        ),
    )


def mark_verified(connection: Connection, address: str, at: str, ok: bool) -> None:
    """Record a verification of an installed connector (`cloned connectors verify`)."""
    connection.execute(
        "UPDATE installs SET verified_at = ?, verified_ok = ? WHERE address = ?",
        (at, int(ok), address),
    )


def delete(connection: Connection, address: str) -> None:
    """Forget one install record (inside the caller's transaction)."""
    connection.execute("DELETE FROM installs WHERE address = ?", (address,))


def of(connection: Connection, address: str) -> Install | None:
    """One install record, read inside the caller's transaction."""
    found = connection.execute(
        "SELECT address, record, verified_at, verified_ok FROM installs WHERE address = ?",
        (address,),
    ).fetchone()
    if found is None:
        return None
    return Install(found[0], json.loads(found[1]), found[2], bool(found[3]))


def trees_in_use(connection: Connection) -> set[str]:
    """The store entries some install record still uses (read inside the transaction)."""
    return {
        str(record["tree"])
        for (text,) in connection.execute("SELECT record FROM installs").fetchall()
        if (record := json.loads(text)).get("tree")
    }
