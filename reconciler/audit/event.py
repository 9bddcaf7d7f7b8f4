"""The audit event and its hash: the one definition every writer and verifier shares.

An event is `{seq, ts, actor, type, subject, payload, prev_hash, hash}`; `hash` is
`reconciler.canonical.digest` of the other seven fields, and `prev_hash` is the previous event's
hash (`GENESIS` for event 1). The canonical text is assembled here by splicing JSON-escaped
fields around the payload's stored canonical text, which gives exactly the bytes `canonical_json`
would give (a unit test holds them equal) at a fraction of the cost, so verification stays far
above 100,000 events per second (specs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from reconciler.canonical import canonical_json
from reconciler.state.audit_rows import AuditRow

GENESIS = "sha256:" + "0" * 64
"""The `prev_hash` of event 1."""

FIELDS = ("actor", "hash", "payload", "prev_hash", "seq", "subject", "ts", "type")
"""Every field of an event, in canonical (sorted) order."""

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
"""Event types are dotted lower-case words: `apply.started`, `approval.granted`."""

json_string = encode_basestring
"""A str as a JSON string token, exactly as json.dumps(ensure_ascii=False) writes it (C code)."""
_enc = json_string


@dataclass(frozen=True)
class Event:
    """One audit event, as stored and as exported."""

    seq: int
    ts: str
    actor: str
    type: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (every field, the hash included)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "type": self.type,
            "subject": self.subject,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def line(self) -> str:
        """Canonical JSON text: a line of a segment, and of `cloned audit log --json`."""
        return canonical_json(self.to_json()).decode()

    @classmethod
    def from_row(cls, row: AuditRow) -> Event:
        """An event read back from the state database."""
        payload = json.loads(row.payload)
        return cls(row.seq, row.ts, row.actor, row.type, row.subject, payload, *row[6:])


def body_text(
    seq: int, ts: str, actor: str, type_: str, subject: str, payload: str, prev_hash: str
) -> str:
    """Canonical JSON of the event without its hash; `payload` is already canonical JSON text.

    Raises TypeError when a text field is not a string (a damaged row).
    """
    return (
        f'{{"actor":{_enc(actor)},"payload":{payload},"prev_hash":{_enc(prev_hash)},'
        f'"seq":{int(seq)},"subject":{_enc(subject)},"ts":{_enc(ts)},"type":{_enc(type_)}}}'
    )


def line_text(row: AuditRow) -> str:
    """Canonical JSON of a stored event with its hash: what a segment holds for this row."""
    prefix = f'{{"actor":{_enc(row.actor)}'
    body = body_text(*row[:7])
    return f'{prefix},"hash":{_enc(row.hash)}{body[len(prefix) :]}'


def hash_text(body: str) -> str:
    """`sha256:<hex>` of canonical text (the same as `canonical.digest` of the parsed value)."""
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def payload_text(payload: Any) -> str:
    """The canonical JSON text of a payload; raises ValueError unless it is a JSON object."""
    if not isinstance(payload, dict):
        raise ValueError(f"an audit payload must be a JSON object, not {type(payload).__name__}")
    try:
        return canonical_json(payload).decode()
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"an audit payload must be plain JSON data: {exc}") from None
