"""The one writer of `cloned.lock`: the applied state, and only what the audit log applied.

Apply (after its changes) and drift repair (after its repairs) both write the lock file here.
It refuses when any applied record is not what the audit log says was applied (drift.py's
`modified` and `unaudited` findings): the lock is committed, reviewed and planned against in CI,
so a value edited into the state database must never reach it by being written out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from reconciler.canonical import digest
from reconciler.engine import actual as actual_state
from reconciler.engine.drift import UnaccountedState, unaccounted
from reconciler.redact import Redactor
from reconciler.state import installs
from reconciler.state.db import StateDB
from reconciler.state.meta import get_meta, set_meta

WRITTEN_FROM = "lock_written_from"
"""meta key: digest of the applied state cloned.lock was last written from."""
TEXT_SHA256 = "lock_text_sha256"
"""meta key: sha256 of the bytes cloned.lock was last written with."""


@dataclass(frozen=True)
class Written:
    """What `write` did: whether the file changed, and the state digest it was written from."""

    changed: bool
    state_digest: str


def write(root: Path, db: StateDB, redactor: Redactor) -> Written:
    """Write `cloned.lock` from the state database (atomically, only when its text differs);
    raises `UnaccountedState`, writing nothing, when a record is not what the audit log
    applied."""
    found = unaccounted(db)
    if found:
        raise UnaccountedState(found, doing="cloned.lock was not written from them")
    resources = actual_state.from_db(db).resources
    installed = {address: i.record for address, i in installs.all_installs(db).items()}
    text = actual_state.render_lock(resources, redactor, installed)
    changed = actual_state.write_lock(root, text)
    state = digest({address: r.digest for address, r in resources.items()})
    with db.transaction() as connection:
        set_meta(connection, WRITTEN_FROM, state)
        set_meta(connection, TEXT_SHA256, sha256(text.encode()))
    return Written(changed, state)


def current(root: Path, db: StateDB, state_digest: str) -> bool:
    """Whether cloned.lock was last written from the applied state `state_digest` and still has
    the bytes written then (a merge or a hand edit may have changed it; hashing the file is far
    cheaper than rendering it)."""
    if get_meta(db.reader, WRITTEN_FROM) != state_digest:
        return False
    try:
        data = (root / actual_state.LOCK_FILE).read_bytes()
    except OSError:
        return False
    return get_meta(db.reader, TEXT_SHA256) == sha256(data)


def sha256(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()
