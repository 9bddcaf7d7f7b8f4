"""Rows of the `rate_calls` table: when each recent call counted by a rate limit was admitted,
by what it counts under (`connector.NAME`, `workspace`). Every process of a workspace (two
gateways, `cloned connectors call`) counts in the same table, inside the transaction that admits
the call, so a second process gets no allowance of its own. Times are seconds since the epoch
from the injected clock; rows older than the longest window are pruned as calls come in.
"""

from __future__ import annotations

from reconciler.state.db import Connection

LONGEST = 3600.0
"""The longest window any rate limit counts over (`callsPerHour`)."""


def count(connection: Connection, key: str, since: float) -> int:
    """How many calls counted under `key` were admitted after `since`."""
    row = connection.execute(
        "SELECT COUNT(*) FROM rate_calls WHERE key = ? AND at > ?", (key, since)
    ).fetchone()
    return int(row[0])


def add(connection: Connection, key: str, at: float) -> None:
    """Count one call under `key` at `at`, forgetting calls too old for any window."""
    connection.execute("DELETE FROM rate_calls WHERE key = ? AND at <= ?", (key, at - LONGEST))
    connection.execute("INSERT INTO rate_calls (key, at) VALUES (?, ?)", (key, at))


def remove(connection: Connection, key: str, at: float) -> None:
    """Uncount one call admitted at `at` that was never made."""
    connection.execute(
        "DELETE FROM rate_calls WHERE rowid = "
        "(SELECT rowid FROM rate_calls WHERE key = ? AND at = ? LIMIT 1)",
        (key, at),
    )
