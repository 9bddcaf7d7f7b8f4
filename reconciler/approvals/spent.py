"""Which approval records are spent: an approval authorises one use of its change (one apply
of a gated change, one governed tool call), and the use records an `approval.spent` audit
event naming the record. Apply (`engine.run`) and the governed call path (`governed.calls`)
both write it and read it back here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.canonical import parse_json
from reconciler.state import audit_rows
from reconciler.state.db import Connection

SPENT_EVENT = "approval.spent"
"""The audit event recorded for each approval used: payload `{"request", "approver",
"record", "file"}`, `record` being the record's id (`Record.id`)."""


def spent_in(connection: Connection) -> dict[str, int]:
    """The approvals already used, from the state database's audit log: record id -> seq."""
    rows = audit_rows.select(connection, type_prefix=SPENT_EVENT)
    return spent_from((row.seq, row.type, row.payload) for row in rows)


def spent_from(events: Iterable[tuple[Any, Any, Any]]) -> dict[str, int]:
    """record id -> seq of its first `approval.spent` among (seq, type, payload) triples; a
    payload is JSON text (database rows) or an object (segment lines)."""
    spent: dict[str, int] = {}
    for seq, type_, payload in events:
        if type_ != SPENT_EVENT:
            continue
        data = _payload(payload)
        record = data.get("record") if isinstance(data, dict) else None
        if isinstance(record, str) and isinstance(seq, int):
            spent.setdefault(record, seq)
    return spent


def _payload(payload: object) -> object:
    """An event's payload: JSON text in the database, an object in a segment (a string there,
    or text that does not parse, is an edited line that `cloned audit verify` reports)."""
    if not isinstance(payload, str):
        return payload
    try:
        return parse_json(payload)
    except ValueError:
        return None
