"""Opening the state database: WAL mode, versioned schema, one transaction per logical step.

`StateDB.transaction()` is `BEGIN IMMEDIATE ... COMMIT`: a step either happens completely or not
at all, so a process killed at any point leaves a database that opens and a state that the next
apply converges from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.atomic import create_private_file
from reconciler.errors import StateUnavailable

DB_FILE = Path(".cloned") / "state" / "cloned.db"

Connection = sqlite3.Connection
"""The handle a transaction yields; other packages name the type through this alias."""

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE resources (
        address TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        digest TEXT NOT NULL,
        origin TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        plan_id TEXT NOT NULL
    );
    CREATE TABLE approval_requests (
        id TEXT PRIMARY KEY,
        change_hash TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL,
        action TEXT NOT NULL,
        change TEXT NOT NULL,
        rules TEXT NOT NULL,
        author TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        superseded_by TEXT
    );
    CREATE INDEX approval_requests_by_address ON approval_requests (address, status);
    CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        type TEXT NOT NULL,
        subject TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    );
    CREATE TABLE lock (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StateDB:
    """An open state database."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path

    @classmethod
    def open(cls, root: Path, *, create: bool = True) -> StateDB | None:
        """The database of the workspace at `root`, migrated to the current schema.

        With `create=False` a missing database is None (a fresh clone plans against
        `cloned.lock` instead), and nothing is written.
        """
        path = root / DB_FILE
        if not path.exists() and not create:
            return None
        # SQLite gives the -wal and -shm files the database file's mode: creating it 0600 first
        # keeps all three owner-only (an older database is narrowed here too).
        _make_private(path)
        try:
            connection = sqlite3.connect(path, isolation_level=None, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            db = cls(connection, path)
            db._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateUnavailable(
                f"{path}: the state database cannot be opened ({exc})",
                hint="if it is damaged, move it aside; `cloned plan` then plans from cloned.lock",
            ) from None
        return db

    def _migrate(self) -> None:
        version = int(self._connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateUnavailable(
                f"{self.path}: state schema version {version} is newer than this Cloned "
                f"understands ({SCHEMA_VERSION}); upgrade Cloned"
            )
        for target in range(version, SCHEMA_VERSION):
            with self.transaction() as connection:
                for statement in _statements(MIGRATIONS[target]):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version={target + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One logical step: everything inside commits together or not at all."""
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @property
    def reader(self) -> sqlite3.Connection:
        """The connection, for reads outside a transaction."""
        return self._connection

    def close(self) -> None:
        """Close the connection (WAL contents stay durable)."""
        self._connection.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_private(path: Path) -> None:
    create_private_file(path)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            create_private_file(companion)


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the surrounding transaction; run statements one by one so a
    # migration and its version bump are a single transaction.
    return [statement.strip() for statement in script.split(";") if statement.strip()]
