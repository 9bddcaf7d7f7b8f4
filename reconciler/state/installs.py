"""Rows of the `installs` table: what is installed for each applied Connector (its entry in
the content-addressed store, its environment) and when it last verified. The Connector
provider writes them in the same transaction as the resource row."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from reconciler.errors import StateUnavailable
from reconciler.state.db import DB_FILE, Connection, StateDB

_TREE = re.compile(r"^sha256:[0-9a-f]{64}$")
_ENV_KEYS = ("path", "lockDigest", "filesDigest")


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
        address: Install(address, parse_record(address, record), verified_at, bool(ok))
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
    return Install(found[0], parse_record(found[0], found[1]), found[2], bool(found[3]))


def trees_in_use(connection: Connection) -> set[str]:
    """The store entries some install record still uses (read inside the transaction)."""
    return {
        str(record["tree"])
        for address, text in connection.execute("SELECT address, record FROM installs").fetchall()
        if (record := parse_record(address, text)).get("tree")
    }


def env_digests(connection: Connection) -> set[str]:
    """The files digests of the environments some install record holds: the only ones an
    install may reuse, since Cloned built them (read inside the transaction)."""
    found = set()
    for address, text in connection.execute("SELECT address, record FROM installs").fetchall():
        env = parse_record(address, text).get("env")
        if isinstance(env, dict):
            found.add(str(env["filesDigest"]))
    return found


def parse_record(address: str, text: str) -> dict[str, Any]:
    """The install record stored as `text`; `StateUnavailable` naming the database and the
    connector when it is not one (a damaged or hand-edited row must stop an upgrade, a delete
    or a verification with one clear error, not be half-read)."""
    try:
        record = json.loads(text)
    except (TypeError, ValueError):
        record = None
    problem = _record_problem(record)
    if problem is not None:
        raise StateUnavailable(
            f"{DB_FILE}: the install record of {address} is damaged ({problem})",
            hint="restore the state database from a backup, or delete the connector's row "
            "and apply again to reinstall it",
        )
    assert isinstance(record, dict)
    return record


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    tree = record.get("tree")
    if tree is not None and not (isinstance(tree, str) and _TREE.match(tree)):
        return "its tree is not a sha256 digest"
    env = record.get("env")
    if env is not None and not (
        isinstance(env, dict) and all(isinstance(env.get(key), str) for key in _ENV_KEYS)
    ):
        return "its environment is not {path, lockDigest, filesDigest}"
    return None
