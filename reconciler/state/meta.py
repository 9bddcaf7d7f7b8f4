"""The `meta` table: small named values the engine keeps (exported audit seq, pinned keys,
what the lock file was last written from)."""

from __future__ import annotations

from reconciler.state.db import Connection


def get_meta(connection: Connection, key: str) -> str | None:
    """A value from the `meta` table, or None."""
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(connection: Connection, key: str, value: str) -> None:
    """Set a value in the `meta` table (inside the caller's transaction)."""
    connection.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
