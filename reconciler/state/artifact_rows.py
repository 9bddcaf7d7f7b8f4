"""Rows of the `artifacts` table: each output a run published, by (run id, name).

`reconciler.artifacts` stores the bytes (content-addressed files) and signs the provenance;
this module only stores and reads the rows, inside the caller's transaction for writes.
"""

from __future__ import annotations

from typing import NamedTuple

from reconciler.state.db import Connection

_COLUMNS = "run_id, name, digest, media_type, size, created_at"


class ArtifactRow(NamedTuple):
    """One recorded artifact; `digest` is `sha256:HEX` of the file's bytes."""

    run_id: str
    name: str
    digest: str
    media_type: str
    size: int
    created_at: str


def insert(connection: Connection, row: ArtifactRow) -> None:
    """Record one artifact (the caller's transaction commits it)."""
    connection.execute(
        f"INSERT INTO artifacts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
        row,
    )


def of_run(connection: Connection, run_id: str) -> list[ArtifactRow]:
    """The artifacts of run `run_id`, by name."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM artifacts WHERE run_id = ? ORDER BY name",  # noqa: S608
        (run_id,),
    ).fetchall()
    return [_row(values) for values in rows]


def every(connection: Connection) -> list[ArtifactRow]:
    """Every recorded artifact, newest first, then by run and name."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM artifacts "  # noqa: S608
        "ORDER BY created_at DESC, run_id, name"
    ).fetchall()
    return [_row(values) for values in rows]


def named(connection: Connection, name: str) -> list[ArtifactRow]:
    """The artifacts called `name`, of every run, newest first."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM artifacts WHERE name = ? "  # noqa: S608
        "ORDER BY created_at DESC, run_id",
        (name,),
    ).fetchall()
    return [_row(values) for values in rows]


def with_digest(connection: Connection, prefix: str) -> list[ArtifactRow]:
    """The artifacts whose digest (`sha256:HEX`) starts with `prefix`, newest first."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM artifacts "  # noqa: S608
        "WHERE substr(digest, 1, length(?1)) = ?1 ORDER BY created_at DESC, run_id, name",
        (prefix,),
    ).fetchall()
    return [_row(values) for values in rows]


def _row(values: tuple[object, ...]) -> ArtifactRow:
    run_id, name, digest, media_type, size, created_at = values
    return ArtifactRow(
        str(run_id), str(name), str(digest), str(media_type), int(str(size)), str(created_at)
    )
