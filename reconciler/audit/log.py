"""Writing and reading the audit log in the state database.

The apply engine calls `append()` inside the same `StateDB.transaction()` as the change it
records, so a change and its audit event commit together or not at all. `events()` is what
`cloned audit log` shows; `export` copies the log into committed segments and `verify` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from reconciler.audit.event import GENESIS, TYPE_PATTERN, Event, body_text, hash_text, payload_text
from reconciler.clock import stamp
from reconciler.errors import ClonedError
from reconciler.redact import Redactor
from reconciler.state import audit_rows
from reconciler.state.audit_rows import AuditRow, Connection
from reconciler.state.db import StateDB

Since = int | datetime
"""`--since`: a seq (events from that seq on) or a time (events stamped at or after it)."""


def append(
    connection: Connection,
    *,
    actor: str,
    type: str,  # the field name of the event format
    subject: str,
    payload: Mapping[str, Any],
    redactor: Redactor,
) -> Event:
    """Record the next event inside the caller's open transaction and return it.

    Actor, subject and payload pass through `redactor` before they are hashed, so a secret never
    reaches the database, a segment or a hash that could confirm a guess.
    """
    if not connection.in_transaction:
        raise RuntimeError("audit append() must run inside StateDB.transaction()")
    if not TYPE_PATTERN.match(type):
        raise ValueError(f"audit event type {type!r} is not dotted lower-case words")
    if not isinstance(payload, Mapping):
        raise ValueError(f"an audit payload must be a JSON object, not {payload!r:.40}")
    redacted = redactor.data(dict(payload))
    text = payload_text(redacted)
    last = audit_rows.head(connection)
    seq, prev_hash = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    row = AuditRow(
        seq, stamp(), redactor.text(actor), type, redactor.text(subject), text, prev_hash, ""
    )
    row = row._replace(hash=hash_text(body_text(*row[:7])))
    audit_rows.insert(connection, row)
    return Event(*row[:5], redacted, row.prev_hash, row.hash)


def events(
    db: StateDB,
    *,
    since: Since | None = None,
    type: str | None = None,  # mirrors the --type option
    subject: str | None = None,
) -> list[Event]:
    """Stored events matching every given filter, in seq order; `type` may be a dotted prefix."""
    rows = audit_rows.select(
        db.reader,
        since_seq=since if isinstance(since, int) else None,
        since_ts=stamp(since) if isinstance(since, datetime) else None,
        type_prefix=type,
        subject=subject,
    )
    return [Event.from_row(row) for row in rows]


def matches(
    event: Event,
    *,
    since: Since | None = None,
    type: str | None = None,  # mirrors the --type option
    subject: str | None = None,
) -> bool:
    """The filters of `events()`, for events read from segments."""
    if isinstance(since, int) and event.seq < since:
        return False
    if isinstance(since, datetime) and event.ts < stamp(since):
        return False
    if type is not None and event.type != type and not event.type.startswith(type + "."):
        return False
    return subject is None or event.subject == subject


MAX_SEQ = 2**63 - 1
"""The largest event number: SQLite's largest integer."""


def parse_since(text: str) -> Since:
    """`--since`: a seq (`17`), a date (`2026-01-31`, UTC midnight) or a time with an offset."""
    if text.isascii() and text.isdigit():
        if int(text) > MAX_SEQ:
            raise ClonedError(
                f"--since: {text} is out of range (event numbers go up to {MAX_SEQ})",
                hint="use e.g. --since 17, --since 2026-01-31 or --since 2026-01-31T12:00:00Z",
            )
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ClonedError(
            f"--since: {text!r} is neither an event number nor a date or time",
            hint="use e.g. --since 17, --since 2026-01-31 or --since 2026-01-31T12:00:00Z",
        ) from None
    if moment.tzinfo is None:
        raise ClonedError(
            f"--since: {text!r} has no UTC offset",
            hint="add Z or an offset, e.g. 2026-01-31T12:00:00Z",
        )
    return moment
