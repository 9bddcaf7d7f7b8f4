"""The audit chain: appending inside transactions, hashing, redaction, export and its recovery."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from reconciler.audit import append, events, export, parse_since, verify, workspace_signer
from reconciler.audit.chain import parse_line, verify_rows
from reconciler.audit.event import GENESIS, body_text, line_text, payload_text
from reconciler.audit.files import CHECKPOINTS_FILE, SEGMENTS_DIR
from reconciler.audit.signing import KEY_FILE, FileSigner, create_key_file
from reconciler.canonical import canonical_json, digest
from reconciler.data import data_dir
from reconciler.errors import ClonedError
from reconciler.redact import Redactor
from reconciler.state import audit_rows, meta
from reconciler.state.audit_rows import AuditRow
from reconciler.state.db import StateDB

NOW = "2026-03-01T09:30:00+00:00"
SECRET = "hunter2-correct-horse"
TOKEN = "ghp_" + "a1B2" * 9


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLONED_NOW", NOW)
    (tmp_path / ".cloned").mkdir()
    return tmp_path


@pytest.fixture
def db(root: Path) -> Iterator[StateDB]:
    opened = StateDB.open(root)
    assert opened is not None
    yield opened
    opened.close()


def add(db: StateDB, count: int, *, redactor: Redactor | None = None, **fields: str) -> None:
    """Append `count` events, each in its own transaction."""
    for _ in range(count):
        with db.transaction() as connection:
            append(
                connection,
                actor=fields.get("actor", "alice"),
                type=fields.get("type", "change.applied"),
                subject=fields.get("subject", "budget.research"),
                payload={"n": 1},
                redactor=redactor or Redactor(),
            )


def test_events_chain_from_genesis_and_hash_their_canonical_content(db: StateDB) -> None:
    with db.transaction() as connection:
        first = append(
            connection,
            actor="alice",
            type="apply.started",
            subject="plan:sha256:abc",
            payload={"changes": 2, "ü": ["é", 1.5, None, True]},
            redactor=Redactor(),
        )
        second = append(
            connection,
            actor="alice",
            type="change.applied",
            subject="budget.research",
            payload={},
            redactor=Redactor(),
        )
    assert (first.seq, first.prev_hash, first.ts) == (1, GENESIS, "2026-03-01T09:30:00Z")
    assert (second.seq, second.prev_hash) == (2, first.hash)
    for event in (first, second):
        body = event.to_json()
        assert body.pop("hash") == event.hash == digest(body)
        assert event.line() == canonical_json(event.to_json()).decode()
    assert events(db) == [first, second]


def test_append_needs_the_callers_transaction(db: StateDB) -> None:
    with pytest.raises(RuntimeError, match=r"inside StateDB\.transaction"):
        append(db.reader, actor="a", type="x.y", subject="s", payload={}, redactor=Redactor())


def test_an_event_rolls_back_with_the_step_it_records(db: StateDB) -> None:
    with pytest.raises(KeyError), db.transaction() as connection:
        append(connection, actor="a", type="x.y", subject="s", payload={}, redactor=Redactor())
        raise KeyError("the step failed")
    assert events(db) == []
    add(db, 1)
    assert [event.seq for event in events(db)] == [1]


@pytest.mark.parametrize(
    ("type_", "payload"),
    [("Apply", {}), ("apply", {}), ("x.y", [1]), ("x.y", {"f": float("nan")}), ("x.y", {"b": b""})],
)
def test_bad_types_and_payloads_are_refused(db: StateDB, type_: str, payload: object) -> None:
    with pytest.raises(ValueError), db.transaction() as connection:
        append(connection, actor="a", type=type_, subject="s", payload=payload, redactor=Redactor())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and \\ backslash', "new\nline\ttab\x00nul", "ünïcødé ✓ 😀", "</script>"],
)
def test_spliced_text_is_exactly_the_canonical_json(text: str) -> None:
    payload = {"k": text, text: [text, 1, 2.5, None, False, {"z": 1, "a": 2}]}
    row = AuditRow(7, "2026-01-01T00:00:00Z", text, "x.y", text, payload_text(payload), GENESIS, "")
    event = {
        "seq": 7,
        "ts": row.ts,
        "actor": text,
        "type": "x.y",
        "subject": text,
        "payload": payload,
        "prev_hash": GENESIS,
    }
    assert body_text(*row[:7]) == canonical_json(event).decode()
    row = row._replace(hash=digest(event))
    assert line_text(row) == canonical_json({**event, "hash": row.hash}).decode()
    assert parse_line(line_text(row)) == (7, row.hash, GENESIS, "")


def test_a_line_with_the_right_content_but_not_canonical_is_named_so(db: StateDB) -> None:
    add(db, 1)
    line = events(db)[0].line()
    spaced = json.dumps(json.loads(line), sort_keys=True)
    assert parse_line(spaced)[3] == "not in canonical form (sorted keys, no spaces, one line)"
    duplicated = line.replace('{"actor":"alice",', '{"actor":"mallory","actor":"alice",')
    assert parse_line(duplicated)[3] == "not in canonical form (sorted keys, no spaces, one line)"
    assert parse_line(line.replace('"n":1', '"n":2'))[3] == "hash does not match its content"
    assert parse_line("{") == "not valid JSON"
    assert parse_line("[]") == "not a JSON object"
    assert parse_line(line.replace('"seq":1', '"seq":true')) == (
        "not an audit event (seq is not a positive integer)"
    )


def test_verify_rows_finds_an_edited_row_and_a_broken_link(db: StateDB) -> None:
    add(db, 3)
    rows = list(audit_rows.scan(db.reader))
    assert verify_rows(rows).finding is None
    assert verify_rows(rows).hashes == [row.hash for row in rows]
    edited = [rows[0], rows[1]._replace(payload='{"n":2}'), rows[2]]
    assert verify_rows(edited).finding.message == (  # type: ignore[union-attr]
        "event 2 (state database): hash does not match its content"
    )
    gap = [rows[0], rows[2]]
    assert verify_rows(gap).finding.message == (  # type: ignore[union-attr]
        "event 2 is missing from the state database: after event 1 comes event 3"
    )


def test_secrets_are_redacted_before_hashing_and_never_stored_or_exported(
    root: Path, db: StateDB
) -> None:
    redactor = Redactor([r"ghp_[A-Za-z0-9]{36}"])
    redactor.register(SECRET)
    with db.transaction() as connection:
        event = append(
            connection,
            actor=f"alice {SECRET}",
            type="change.applied",
            subject=f"secretref.{SECRET}",
            payload={"token": TOKEN, "note": f"used {SECRET} here", SECRET: [TOKEN]},
            redactor=redactor,
        )
    assert event.payload == {
        "token": "[REDACTED]",
        "note": "used [REDACTED] here",
        "[REDACTED]": ["[REDACTED]"],
    }
    assert (event.actor, event.subject) == ("alice [REDACTED]", "secretref.[REDACTED]")
    body = event.to_json()
    assert body.pop("hash") == digest(body)
    result = export(db, root)
    db.close()
    written = [path for path in (root / ".cloned").rglob("*") if path.is_file()]
    assert set(result.files) <= set(written)
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert TOKEN.encode() not in data, path


def test_events_filters(db: StateDB, monkeypatch: pytest.MonkeyPatch) -> None:
    add(db, 2, type="approval.requested", subject="budget.a")
    monkeypatch.setenv("CLONED_NOW", "2026-03-02T00:00:00+00:00")
    add(db, 1, type="approval.granted", subject="budget.b")
    add(db, 1, type="apply.finished", subject="plan")
    assert [e.seq for e in events(db, type="approval")] == [1, 2, 3]
    assert [e.seq for e in events(db, type="approval.granted")] == [3]
    assert [e.seq for e in events(db, type="approv")] == []
    assert [e.seq for e in events(db, subject="budget.a")] == [1, 2]
    assert [e.seq for e in events(db, since=3)] == [3, 4]
    assert [e.seq for e in events(db, since=datetime(2026, 3, 2, tzinfo=UTC))] == [3, 4]
    assert [e.seq for e in events(db, since=2, type="approval", subject="budget.a")] == [2]


def test_parse_since() -> None:
    assert parse_since("17") == 17
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_since("2026-01-31T12:00:00Z") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    with pytest.raises(ClonedError, match="has no UTC offset"):
        parse_since("2026-01-31T12:00:00")
    with pytest.raises(ClonedError, match="neither an event number nor a date"):
        parse_since("yesterday")


def test_export_writes_segments_and_signed_checkpoints_valid_by_schema(
    root: Path, db: StateDB
) -> None:
    add(db, 3)
    first = export(db, root)
    add(db, 2)
    second = export(db, root)
    assert (first.first, first.last, second.first, second.last) == (1, 3, 4, 5)
    assert export(db, root).files == ()
    segments = sorted(path.name for path in (root / SEGMENTS_DIR).iterdir())
    assert segments == ["00000001-00000003.jsonl", "00000004-00000005.jsonl"]
    event_schema = json.loads((data_dir("schemas") / "audit-event.schema.json").read_text())
    for path in (root / SEGMENTS_DIR).iterdir():
        for line in path.read_text().splitlines():
            jsonschema.validate(json.loads(line), event_schema)
    checkpoint_schema = json.loads(
        (data_dir("schemas") / "audit-checkpoint.schema.json").read_text()
    )
    checkpoints = (root / CHECKPOINTS_FILE).read_text().splitlines()
    assert [json.loads(line)["seq"] for line in checkpoints] == [3, 5]
    for line in checkpoints:
        jsonschema.validate(json.loads(line), checkpoint_schema)
        assert line == canonical_json(json.loads(line)).decode()
    assert verify(root, db).ok


def test_the_audit_key_is_private_pinned_and_required(root: Path, db: StateDB) -> None:
    add(db, 1)
    export(db, root)
    key = root / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pinned = meta.get_meta(db.reader, audit_rows.PUBLIC_KEY)
    assert pinned == FileSigner.load(key).public_key
    other = root / "other-key"
    create_key_file(other)
    add(db, 1)
    with pytest.raises(ClonedError, match="is not the one this workspace pinned"):
        export(db, root, signer=FileSigner.load(other))
    os.replace(other, key)
    with pytest.raises(ClonedError, match="not the audit key pinned in the state database"):
        workspace_signer(db, root)
    key.unlink()
    with pytest.raises(ClonedError, match="the audit key is missing"):
        workspace_signer(db, root)


def test_an_interrupted_export_is_redone_by_the_next_one(root: Path, db: StateDB) -> None:
    add(db, 3)
    export(db, root)
    add(db, 2)
    export(db, root)
    # The files of the second export were written, but its transaction never committed.
    with db.transaction() as connection:
        meta.set_meta(connection, audit_rows.EXPORTED_SEQ, "3")
    add(db, 1)
    result = export(db, root)
    assert result.removed == (root / SEGMENTS_DIR / "00000004-00000005.jsonl",)
    assert (result.first, result.last) == (4, 6)
    assert [json.loads(line)["seq"] for line in (root / CHECKPOINTS_FILE).open()] == [3, 6]
    assert verify(root, db).ok


def test_export_refuses_segments_it_did_not_write(root: Path, db: StateDB) -> None:
    add(db, 2)
    export(db, root)
    with db.transaction() as connection:
        meta.set_meta(connection, audit_rows.EXPORTED_SEQ, "0")
        connection.execute("UPDATE audit_events SET actor = 'bob' WHERE seq = 2")
    with pytest.raises(ClonedError, match="holds events that are not in this state database"):
        export(db, root)


def test_export_never_signs_a_tampered_row(root: Path, db: StateDB) -> None:
    add(db, 2)
    with db.transaction() as connection:
        connection.execute("UPDATE audit_events SET subject = 'x' WHERE seq = 2")
    with pytest.raises(ClonedError, match=r"event 2 \(state database\): hash does not match"):
        export(db, root)
    assert not (root / CHECKPOINTS_FILE).exists()
