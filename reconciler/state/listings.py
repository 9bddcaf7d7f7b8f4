"""Rows of the `tool_listings` table: the last tool listing seen of each connector, with the
package it came from, when and by whom (`install`, `refresh`, or `runtime` when a live listing
differed from the pins). `cloned plan` reads them to show the re-pin a drift needs.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

from reconciler.canonical import parse_json
from reconciler.errors import StateUnavailable
from reconciler.state.db import DB_FILE, Connection, StateDB


@dataclass(frozen=True)
class Listing:
    """One connector's last observed listing (tool definitions as MCP wire JSON)."""

    address: str
    package_digest: str
    listing: tuple[dict[str, Any], ...]
    observed_at: str
    observed_by: str


def put(
    connection: Connection,
    address: str,
    package_digest: str,
    listing: list[dict[str, Any]],
    *,
    observed_at: str,
    observed_by: str,
) -> None:
    """Record (replace) the listing of `address`, inside the caller's transaction."""
    connection.execute(
        "INSERT OR REPLACE INTO tool_listings "
        "(address, package_digest, listing, observed_at, observed_by) VALUES (?, ?, ?, ?, ?)",
        (address, package_digest, json.dumps(listing, sort_keys=True), observed_at, observed_by),
    )


def get(db: StateDB, address: str) -> Listing | None:
    """The last listing recorded for `address`, if any."""
    row = db.reader.execute(
        "SELECT address, package_digest, listing, observed_at, observed_by FROM tool_listings "
        "WHERE address = ?",
        (address,),
    ).fetchone()
    return _listing(row) if row is not None else None


def all(db: StateDB) -> list[Listing]:  # named like the other row modules' put/get/all
    """Every recorded listing, by address."""
    cursor = db.reader.execute(
        "SELECT address, package_digest, listing, observed_at, observed_by FROM tool_listings "
        "ORDER BY address"
    )
    return [_listing(row) for row in cursor.fetchall()]


def delete(connection: Connection, address: str) -> None:
    """Forget the listing of a deleted connector (inside the caller's transaction)."""
    connection.execute("DELETE FROM tool_listings WHERE address = ?", (address,))


def _listing(row: tuple[str, str, str, str, str]) -> Listing:
    try:
        tools = parse_json(row[2])
    except ValueError:
        tools = None
    if not isinstance(tools, list) or not builtins.all(isinstance(t, dict) for t in tools):
        raise StateUnavailable(
            f"{DB_FILE}: the tool listing of {row[0]} is damaged (not a list of tools)",
            hint="run `cloned plan --refresh` to list the connector's tools again",
        )
    return Listing(row[0], row[1], tuple(tools), row[3], row[4])
