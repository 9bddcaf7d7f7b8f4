"""The state database moves forward one schema version at a time, keeping what it holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.errors import StateUnavailable
from reconciler.state import installs
from reconciler.state.db import DB_FILE, MIGRATIONS, SCHEMA_VERSION, StateDB


def _database_at(root: Path, version: int) -> Path:
    path = root / DB_FILE
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        for statement in (s.strip() for s in script.split(";")):
            if statement:
                connection.execute(statement)
    connection.execute(f"PRAGMA user_version={version}")
    connection.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    connection.close()
    return path


def test_a_version_1_database_gains_the_installs_table_and_keeps_its_rows(tmp_path: Path) -> None:
    _database_at(tmp_path, 1)
    db = StateDB.open(tmp_path)
    assert db is not None
    with db:
        assert db.reader.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone() == ("yes",)
        assert db.reader.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert installs.all_installs(db) == {}


def test_an_older_database_missing_a_table_of_its_version_is_refused_unchanged(
    tmp_path: Path,
) -> None:
    path = _database_at(tmp_path, 1)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("DROP TABLE lock")
    connection.close()
    before = path.read_bytes()
    with pytest.raises(StateUnavailable, match="no table lock"):
        StateDB.open(tmp_path)
    assert path.read_bytes() == before
