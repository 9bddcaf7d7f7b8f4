"""Opening the state database: WAL mode, versioned schema, one transaction per logical step.

`StateDB.transaction()` is `BEGIN IMMEDIATE ... COMMIT`: a step either happens completely or not
at all, so a process killed at any point leaves a database that opens and a state that the next
apply converges from.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.atomic import create_private_file, temp_folder
from reconciler.errors import StateUnavailable

DB_FILE = Path(".cloned") / "state" / "cloned.db"

BUSY_TIMEOUT_MS = 30_000
"""How long a transaction waits for another connection's write lock."""

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
    # 1 -> 2: installed connector packages (the store entry, environment, verification).
    """
    CREATE TABLE installs (
        address TEXT PRIMARY KEY,
        record TEXT NOT NULL,
        verified_at TEXT NOT NULL,
        verified_ok INTEGER NOT NULL
    );
    """,
    # 2 -> 3: the runtime. The last tool listing seen for each connector (at install, on
    # `--refresh`, or live when it differed from the pins), budget use per period, and the
    # times of recent calls that rate limits count (shared by every process of the workspace).
    """
    CREATE TABLE tool_listings (
        address TEXT PRIMARY KEY,
        package_digest TEXT NOT NULL,
        listing TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        observed_by TEXT NOT NULL
    );
    CREATE TABLE usage (
        budget TEXT NOT NULL,
        period TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,
        wall_ms INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        cost_micros INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (budget, period)
    );
    CREATE TABLE rate_calls (key TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX rate_calls_by_key ON rate_calls (key, at);
    """,
    # 3 -> 4: pipeline runs. One row per execution of a Run (its name, the digests of the
    # pipeline and the inputs it executes: executed once each), the journal of its steps, and
    # the artifacts it produced (content-addressed files under .cloned/state/artifacts/).
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        pipeline TEXT NOT NULL,
        pipeline_digest TEXT NOT NULL,
        inputs_digest TEXT NOT NULL,
        execution TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        owner INTEGER,
        queued_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        UNIQUE (name, pipeline_digest, inputs_digest)
    );
    CREATE INDEX runs_by_status ON runs (status, queued_at);
    CREATE TABLE run_steps (
        run_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        args_digest TEXT,
        output TEXT,
        usage TEXT,
        request_id TEXT,
        error TEXT,
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (run_id, idx)
    );
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE INDEX artifacts_by_digest ON artifacts (digest);
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
        `cloned.lock` instead), and nothing is written. A file that is there but is not a Cloned
        state database (empty, not SQLite, another schema) is an error naming it, never an
        empty state.
        """
        path = root / DB_FILE
        if not path.exists():
            if not create:
                return None
            _create(path)
        elif path.is_file() and path.stat().st_size == 0:
            # SQLite would take an empty file for a new database; Cloned never leaves one
            # (it creates the database whole, see `_create`), so it was emptied.
            raise _damaged(path, "the state database is empty (0 bytes)")
        # SQLite gives the -wal and -shm files the database file's mode: narrowing it to 0600
        # first keeps all three owner-only (an older database is narrowed here too).
        _make_private(path)
        try:
            timeout = BUSY_TIMEOUT_MS / 1000
            db = cls(sqlite3.connect(path, isolation_level=None, timeout=timeout), path)
            try:
                db._check_version()  # before anything writes to the file
                _configure(db._connection)
                db._migrate()
                db._check_schema(SCHEMA_VERSION)
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise _damaged(path, f"the state database cannot be opened ({exc})") from None
        return db

    def _version(self) -> int:
        return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> None:
        """A version this Cloned knows, with that version's schema (so an older database is
        whole before it is migrated); a database without a version must be empty (a new one)."""
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StateUnavailable(
                f"{self.path}: state schema version {version} is newer than this Cloned "
                f"understands ({SCHEMA_VERSION}); upgrade Cloned"
            )
        if version == 0 and _tables(self._connection):
            raise _damaged(self.path, "not a Cloned state database (it holds other tables)")
        if version > 0:
            self._check_schema(version)

    def _migrate(self) -> None:
        version = self._version()
        for target in range(version, SCHEMA_VERSION):
            with self.transaction() as connection:
                for statement in _statements(MIGRATIONS[target]):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version={target + 1}")

    def _check_schema(self, version: int) -> None:
        """Every table of schema `version` is there with its columns."""
        for table, columns in _expected_schema(version).items():
            found = _columns(self._connection, table)
            if not found:
                raise _damaged(self.path, f"not a Cloned state database (no table {table})")
            if found != columns:
                raise _damaged(
                    self.path,
                    f"not a Cloned state database (table {table} has columns "
                    f"{', '.join(found)}; expected {', '.join(columns)})",
                )

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

    def checkpoint_elsewhere(self) -> StateDB:
        """Leave WAL checkpoints of this connection's commits to `checkpoint()` run elsewhere
        (a worker thread), so a commit on an event loop never does a checkpoint's fsyncs."""
        self._connection.execute("PRAGMA wal_autocheckpoint=0")
        return self

    @contextmanager
    def transaction_if_free(self) -> Iterator[sqlite3.Connection | None]:
        """`transaction()` when the write lock can be taken now, else None at once (nothing
        done, no busy wait): for a caller on an event loop, which must not wait for another
        process's transaction."""
        connection = self._connection
        connection.execute("PRAGMA busy_timeout=0")
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            yield None
            return
        finally:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as no reader needs it (PASSIVE)."""
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def data_version(self) -> int:
        """SQLite's `PRAGMA data_version`: it changes only when another connection (in this
        process or another) committed since this connection last looked; microseconds."""
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    @property
    def reader(self) -> sqlite3.Connection:
        """The connection, for reads outside a transaction."""
        return self._connection

    def close(self) -> None:
        """Close the connection (WAL contents stay durable)."""
        self._connection.close()

    @classmethod
    @contextmanager
    def existing(cls, root: Path) -> Iterator[StateDB | None]:
        """The workspace's state database for a `with` block, closed after it; None when there
        is none (a fresh clone), and nothing is created."""
        db = cls.open(root, create=False)
        try:
            yield db
        finally:
            if db is not None:
                db.close()

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


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")


def _create(path: Path) -> None:
    """Make a new database whole in the git-ignored temporary folder, then rename it into place:
    a crash leaves no database or a complete one, never an empty file."""
    folder = temp_folder(path)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        connection = sqlite3.connect(temp, isolation_level=None)
        try:
            _configure(connection)
            StateDB(connection, temp)._migrate()
        finally:
            connection.close()  # the last connection checkpoints the WAL into the file
        os.replace(temp, path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            temp.with_name(temp.name + suffix).unlink(missing_ok=True)


def _damaged(path: Path, what: str) -> StateUnavailable:
    return StateUnavailable(
        f"{path}: {what}",
        hint="restore it from a backup (it holds this workspace's applied state and audit "
        "log); `cloned plan` without it plans from cloned.lock, but apply refuses to start "
        "the workspace's history again",
    )


def _tables(connection: sqlite3.Connection) -> list[str]:
    cursor = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return sorted(str(row[0]) for row in cursor.fetchall())


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})").fetchall()]


@functools.cache
def _expected_schema(version: int) -> dict[str, list[str]]:
    """table -> columns of schema `version`, from an in-memory database migrated to it."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in MIGRATIONS[:version]:
            for statement in _statements(script):
                connection.execute(statement)
        return {table: _columns(connection, table) for table in _tables(connection)}
    finally:
        connection.close()


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the surrounding transaction; run statements one by one so a
    # migration and its version bump are a single transaction.
    return [statement.strip() for statement in script.split(";") if statement.strip()]
