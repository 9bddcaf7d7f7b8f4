"""`cloned audit log|verify` on a real state database and committed segments, then tampering.

Events are seeded through the audit API (as the apply engine records them), exported in three
batches (segments 1-10, 11-20, 21-25 and three checkpoints), and then the files or the database
are changed the way an attacker or an accident would. Every change must make `cloned audit
verify` exit 1 and name the first bad event precisely.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from reconciler.audit import append, export
from reconciler.audit.signing import KEY_FILE, FileSigner, create_key_file, fingerprint
from reconciler.canonical import canonical_json, digest
from reconciler.redact import Redactor
from reconciler.state.db import DB_FILE, StateDB
from tests.conftest import cloned, write

SEGMENTS = ".cloned/audit/segments"
FIRST, SECOND, LAST = (
    f"{SEGMENTS}/00000001-00000010.jsonl",
    f"{SEGMENTS}/00000011-00000020.jsonl",
    f"{SEGMENTS}/00000021-00000025.jsonl",
)
CHECKPOINTS = ".cloned/audit/checkpoints.jsonl"
SECRET = "s3cr3t-value-for-tests"


@pytest.fixture
def root(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose state database holds 25 events, all exported in three batches."""
    monkeypatch.setenv("CLONED_NOW", "2026-03-01T09:30:00+00:00")
    write(repo, ".cloned/workspace.yaml", "")
    db = StateDB.open(repo)
    assert db is not None
    for first, last in ((1, 10), (11, 20), (21, 25)):
        seed(db, repo, first, last)
    db.close()
    return repo


def seed(db: StateDB, root: Path, first: int, last: int) -> None:
    """Record events first..last in one transaction (as one apply would), then export them."""
    redactor = Redactor()
    redactor.register(SECRET)
    with db.transaction() as connection:
        for seq in range(first, last + 1):
            append(
                connection,
                actor="alice",
                type="change.applied",
                subject="budget.research",
                payload={"limit": seq, "token": SECRET},
                redactor=redactor,
            )
    export(db, root)


def rehash_row(connection: sqlite3.Connection, seq: int) -> None:
    """Recompute the stored hash of event `seq` (and relink the next one), as a forger would."""
    row = connection.execute(
        "SELECT seq, ts, actor, type, subject, payload, prev_hash FROM audit_events WHERE seq = ?",
        (seq,),
    ).fetchone()
    keys = ("seq", "ts", "actor", "type", "subject", "payload", "prev_hash")
    event = dict(zip(keys, row, strict=True))
    event["payload"] = json.loads(event["payload"])
    new = digest(event)
    connection.execute("UPDATE audit_events SET hash = ? WHERE seq = ?", (new, seq))
    connection.execute("UPDATE audit_events SET prev_hash = ? WHERE seq = ?", (new, seq + 1))


def verify(root: Path, *args: str) -> tuple[int, list[str], str]:
    result = cloned("audit", "verify", *args, cwd=root)
    return result.code, result.err.splitlines(), result.out


def first_error(root: Path) -> str:
    code, err, out = verify(root)
    assert code == 1, (out, err)
    assert out == ""
    return err[0]


def lines(root: Path, rel: str) -> list[str]:
    return (root / rel).read_text().splitlines()


def put(root: Path, rel: str, new: list[str]) -> None:
    (root / rel).write_text("".join(line + "\n" for line in new))


def edit_line(root: Path, rel: str, number: int, old: str, new: str) -> None:
    content = lines(root, rel)
    assert old in content[number - 1]
    content[number - 1] = content[number - 1].replace(old, new)
    put(root, rel, content)


def rehash_line(line: str, prev: str | None = None) -> str:
    """A segment line with its hash recomputed (and prev_hash replaced): a careful forger's edit."""
    event = json.loads(line)
    event.pop("hash")
    if prev is not None:
        event["prev_hash"] = prev
    return canonical_json({**event, "hash": digest(event)}).decode()


def without_database(root: Path) -> None:
    shutil.move(root / DB_FILE, root / "cloned.db.aside")


# --- the untouched log --------------------------------------------------------------------------


def test_verify_passes_and_summarises(root: Path) -> None:
    code, err, out = verify(root)
    head = json.loads(lines(root, LAST)[-1])["hash"]
    assert (code, err) == (0, [])
    assert out == f"Audit log verified: 25 events, 3 checkpoints, head {head}\n"
    code, err, out = verify(root, "--json")
    report = json.loads(out)
    assert code == 0
    assert report == {
        "root": str(root),
        "verified": True,
        "events": 25,
        "exported": 25,
        "checkpoints": 3,
        "head": head,
        "database": True,
        "problems": [],
    }


def test_verify_from_a_subfolder_and_without_a_database(root: Path) -> None:
    without_database(root)
    result = cloned("audit", "verify", str(root / ".cloned" / "audit"))
    assert result.code == 0
    assert result.out.startswith("Audit log verified: 25 events, 3 checkpoints, head sha256:")
    assert result.err == "No state database here: verified the committed log only\n"


def test_unexported_events_are_verified_and_counted(root: Path) -> None:
    db = StateDB.open(root)
    assert db is not None
    with db.transaction() as connection:
        for _ in range(2):
            append(connection, actor="a", type="x.y", subject="s", payload={}, redactor=Redactor())
    db.close()
    code, _err, out = verify(root)
    assert code == 0
    assert out.startswith("Audit log verified: 27 events, 3 checkpoints, head sha256:")
    assert out.endswith(" (2 not yet exported)\n")


def test_an_empty_workspace_verifies(repo: Path) -> None:
    write(repo, ".cloned/workspace.yaml", "")
    code, _err, out = verify(repo)
    assert (code, out) == (0, "Audit log verified: 0 events, 0 checkpoints\n")


def test_no_secret_reaches_the_committed_files(root: Path) -> None:
    for path in (root / ".cloned" / "audit").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text()


# --- cloned audit log ---------------------------------------------------------------------------


def test_log_json_prints_each_event_as_its_canonical_line(root: Path) -> None:
    result = cloned("audit", "log", "--json", cwd=root)
    assert result.code == 0
    committed = lines(root, FIRST) + lines(root, SECOND) + lines(root, LAST)
    assert result.out.splitlines() == committed
    assert result.err == ""


def test_log_filters_and_prints_text(root: Path) -> None:
    result = cloned("audit", "log", "--since", "24", "--long", cwd=root)
    assert result.code == 0
    assert result.out.splitlines() == [
        f"{seq}  2026-03-01T09:30:00Z  alice  change.applied  budget.research  "
        f'{{"limit":{seq},"token":"[REDACTED]"}}'
        for seq in (24, 25)
    ]
    assert cloned("audit", "log", "--type", "change", cwd=root).out.count("\n") == 25
    assert cloned("audit", "log", "--type", "approval", cwd=root).out == ""
    assert cloned("audit", "log", "--subject", "budget.x", cwd=root).out == ""
    since = cloned("audit", "log", "--since", "2026-03-02", "--json", cwd=root)
    assert (since.code, since.out) == (0, "")


def test_log_reads_the_segments_without_a_database(root: Path) -> None:
    without_database(root)
    result = cloned("audit", "log", "--json", "--since", "20", cwd=root)
    assert result.code == 0
    assert result.out.splitlines() == lines(root, SECOND)[-1:] + lines(root, LAST)
    assert result.err == "No state database here: showing the committed log in .cloned/audit/\n"


def test_log_rejects_a_bad_since(root: Path) -> None:
    result = cloned("audit", "log", "--since", "last tuesday", cwd=root)
    assert result.code == 1
    assert result.err.startswith(
        "Error: --since: 'last tuesday' is neither an event number nor a date or time\n"
    )


# --- tampering with the committed segments -------------------------------------------------------


def test_an_edited_payload_is_named(root: Path) -> None:
    edit_line(root, SECOND, 7, '"limit":17', '"limit":1700')
    assert first_error(root) == (
        f"Error: event 17 ({SECOND} line 7): hash does not match its content"
    )


def test_an_edited_and_rehashed_event_breaks_the_next_link(root: Path) -> None:
    content = lines(root, SECOND)
    content[6] = rehash_line(content[6].replace('"limit":17', '"limit":1700'))
    put(root, SECOND, content)
    assert (
        first_error(root)
        == f"Error: event 17 differs between the state database and {SECOND} line 7"
    )
    without_database(root)
    assert (
        first_error(root)
        == f"Error: event 18 ({SECOND} line 8): prev_hash does not link to event 17"
    )


def test_a_rewritten_tail_no_longer_matches_the_checkpoint(root: Path) -> None:
    without_database(root)
    content = lines(root, SECOND)
    prev = json.loads(content[5])["hash"]
    for index in range(6, 10):  # events 17-20, rewritten into a consistent chain
        content[index] = rehash_line(content[index].replace('"alice"', '"mallory"'), prev)
        prev = json.loads(content[index])["hash"]
    put(root, SECOND, content)
    rest = lines(root, LAST)
    rest[0] = rehash_line(rest[0], prev)
    for index in range(1, 5):
        rest[index] = rehash_line(rest[index], json.loads(rest[index - 1])["hash"])
    put(root, LAST, rest)
    assert (
        first_error(root) == f"Error: event 20 does not match checkpoint 2 ({CHECKPOINTS} line 2)"
    )


def test_a_deleted_line_is_named(root: Path) -> None:
    content = lines(root, SECOND)
    del content[6]
    put(root, SECOND, content)
    assert first_error(root) == f"Error: event 17 is missing from {SECOND}: line 7 holds event 18"


def test_reordered_lines_are_named(root: Path) -> None:
    content = lines(root, SECOND)
    content[6], content[7] = content[7], content[6]
    put(root, SECOND, content)
    assert first_error(root) == (
        f"Error: event 17 ({SECOND} line 8) is out of order: line 7 holds event 18"
    )


def test_a_truncated_last_segment_is_named(root: Path) -> None:
    put(root, LAST, lines(root, LAST)[:3])
    assert first_error(root) == (
        f"Error: events 24-25 are missing: {LAST} ends at event 23 but its name says 25"
    )


def test_a_truncated_and_renamed_last_segment_is_caught_by_the_checkpoint(root: Path) -> None:
    put(root, LAST, lines(root, LAST)[:3])
    (root / LAST).rename(root / SEGMENTS / "00000021-00000023.jsonl")
    expected = "Error: events 24-25 are missing: the log ends at 23 but checkpoint 3 covers 25"
    assert first_error(root) == expected
    without_database(root)
    assert first_error(root) == expected


def test_a_line_cut_in_the_middle_is_named(root: Path) -> None:
    data = (root / LAST).read_bytes()
    (root / LAST).write_bytes(data[: len(data) - 40])
    assert first_error(root) == f"Error: event 25 ({LAST} line 5): not valid JSON"


def test_a_deleted_last_segment_is_named(root: Path) -> None:
    (root / LAST).unlink()
    expected = "Error: events 21-25 are missing: the log ends at 20 but checkpoint 3 covers 25"
    assert first_error(root) == expected
    without_database(root)
    assert first_error(root) == expected


def test_a_deleted_middle_segment_is_named(root: Path) -> None:
    (root / SECOND).unlink()
    assert first_error(root) == (
        f"Error: events 11-20 are missing: the previous segment ends at 10 and {LAST} starts at 21"
    )


def test_a_deleted_first_segment_is_named(root: Path) -> None:
    (root / FIRST).unlink()
    assert first_error(root) == (
        f"Error: events 1-10 are missing: the first segment, {SECOND}, starts at 11"
    )


def test_an_event_appended_to_a_segment_is_named(root: Path) -> None:
    content = lines(root, LAST)
    last = json.loads(content[-1])
    forged = {**last, "seq": 26, "prev_hash": last["hash"], "payload": {"limit": 1}}
    forged.pop("hash")
    content.append(canonical_json({**forged, "hash": digest(forged)}).decode())
    put(root, LAST, content)
    assert first_error(root) == (
        f"Error: event 26 ({LAST} line 6): beyond the range the file's name says (21-25)"
    )


def test_a_stray_file_among_the_segments_is_named(root: Path) -> None:
    write(root, f"{SEGMENTS}/notes.txt", "hello")
    assert (
        first_error(root) == f"Error: {SEGMENTS}/notes.txt: not a segment file (FIRST-LAST.jsonl)"
    )


def test_events_after_the_last_checkpoint_are_refused(root: Path) -> None:
    put(root, CHECKPOINTS, lines(root, CHECKPOINTS)[:2])
    expected = (
        "Error: events 21-25 are not covered by any checkpoint: the last one, checkpoint 2, "
        "covers 20"
    )
    assert first_error(root) == expected
    without_database(root)
    assert first_error(root) == expected


def test_deleted_checkpoints_are_named(root: Path) -> None:
    (root / CHECKPOINTS).unlink()
    without_database(root)
    assert first_error(root) == (
        f"Error: the committed log has no checkpoints ({CHECKPOINTS} is missing or empty)"
    )


# --- tampering with the checkpoints --------------------------------------------------------------


def test_a_forged_checkpoint_signature_is_named(root: Path) -> None:
    content = lines(root, CHECKPOINTS)
    checkpoint = json.loads(content[1])
    checkpoint["signature"] = base64.b64encode(bytes(64)).decode()
    content[1] = canonical_json(checkpoint).decode()
    put(root, CHECKPOINTS, content)
    assert first_error(root) == (
        f"Error: checkpoint 2 ({CHECKPOINTS} line 2): signature does not verify"
    )


def resign(root: Path, content: list[str], signer: FileSigner, numbers: list[int]) -> None:
    for number in numbers:
        checkpoint = json.loads(content[number - 1])
        checkpoint["key"] = signer.public_key
        message = canonical_json({key: checkpoint[key] for key in ("seq", "hash", "ts", "key")})
        checkpoint["signature"] = base64.b64encode(signer.sign(message)).decode()
        content[number - 1] = canonical_json(checkpoint).decode()
    put(root, CHECKPOINTS, content)


def test_checkpoints_signed_by_another_key_are_refused(root: Path, tmp_path: Path) -> None:
    create_key_file(tmp_path / "mallory")
    mallory = FileSigner.load(tmp_path / "mallory")
    pinned = FileSigner.load(root / KEY_FILE).public_key
    resign(root, lines(root, CHECKPOINTS), mallory, [1, 2, 3])
    assert first_error(root) == (
        f"Error: checkpoint 1 ({CHECKPOINTS} line 1): signed with a key that is not this "
        f"workspace's audit key ({fingerprint(mallory.public_key)}; pinned {fingerprint(pinned)})"
    )


def test_without_a_database_every_checkpoint_must_share_one_key(root: Path, tmp_path: Path) -> None:
    create_key_file(tmp_path / "mallory")
    mallory = FileSigner.load(tmp_path / "mallory")
    pinned = FileSigner.load(root / KEY_FILE).public_key
    resign(root, lines(root, CHECKPOINTS), mallory, [3])
    without_database(root)
    assert first_error(root) == (
        f"Error: checkpoint 3 ({CHECKPOINTS} line 3): signed with a key that is not the key of "
        f"checkpoint 1 ({fingerprint(mallory.public_key)}; checkpoint 1: {fingerprint(pinned)})"
    )


def test_a_checkpoint_moved_to_another_event_is_named(root: Path) -> None:
    content = lines(root, CHECKPOINTS)
    content[1], content[2] = content[2], content[1]
    put(root, CHECKPOINTS, content)
    assert first_error(root) == (
        f"Error: checkpoint 3 ({CHECKPOINTS} line 3): covers event 20, not after checkpoint 2 "
        "(event 25)"
    )


# --- tampering with the state database ----------------------------------------------------------


def sql(root: Path, statement: str, *values: object) -> None:
    connection = sqlite3.connect(root / DB_FILE)
    with connection:
        connection.execute(statement, values)
    connection.close()


def test_an_edited_database_row_is_named(root: Path) -> None:
    sql(root, "UPDATE audit_events SET payload = ? WHERE seq = 12", '{"limit":0}')
    assert first_error(root) == "Error: event 12 (state database): hash does not match its content"


def test_an_edited_and_rehashed_database_row_is_named(root: Path) -> None:
    connection = sqlite3.connect(root / DB_FILE)
    with connection:
        connection.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 12")
        for seq in range(12, 26):
            rehash_row(connection, seq)
    connection.close()
    assert first_error(root) == (
        f"Error: event 12 differs between the state database and {SECOND} line 2"
    )


def test_a_deleted_database_row_is_named(root: Path) -> None:
    sql(root, "DELETE FROM audit_events WHERE seq = 12")
    assert first_error(root) == (
        "Error: event 12 is missing from the state database: after event 11 comes event 13"
    )


def test_a_truncated_database_is_named(root: Path) -> None:
    sql(root, "DELETE FROM audit_events WHERE seq > 22")
    assert first_error(root) == (
        "Error: events 23-25 are missing from the state database: it ends at 22 but "
        "checkpoint 3 covers 25"
    )


def test_verify_json_names_every_problem(root: Path) -> None:
    edit_line(root, SECOND, 7, '"limit":17', '"limit":1700')
    sql(root, "UPDATE audit_events SET payload = ? WHERE seq = 22", '{"limit":0}')
    code, _err, out = verify(root, "--json")
    report = json.loads(out)
    assert code == 1
    assert report["verified"] is False
    assert report["problems"] == [
        {
            "seq": 17,
            "file": SECOND,
            "line": 7,
            "message": f"event 17 ({SECOND} line 7): hash does not match its content",
        },
        {
            "seq": 22,
            "file": None,
            "line": None,
            "message": "event 22 (state database): hash does not match its content",
        },
    ]
    _code, err, _out = verify(root)
    assert err == [
        f"Error: event 17 ({SECOND} line 7): hash does not match its content",
        "Also: event 22 (state database): hash does not match its content",
    ]


def test_an_export_killed_before_its_checkpoint_verifies_and_is_completed(root: Path) -> None:
    """A crash between writing a segment and signing its checkpoint is not tampering: the
    database holds those events and knows they were not exported; the next export signs them."""
    checkpoints = (root / CHECKPOINTS).read_text()
    db = StateDB.open(root)
    assert db is not None
    seed(db, root, 26, 30)
    # Roll the files back to "segment written, checkpoint not yet", as a kill would leave them.
    (root / CHECKPOINTS).write_text(checkpoints)
    with db.transaction() as connection:
        connection.execute("UPDATE meta SET value = '25' WHERE key = 'audit_exported_seq'")
    db.close()
    code, _, out = verify(root)
    assert code == 0, out
    # Without the database nobody can tell this tail from one an attacker appended.
    shutil.move(root / DB_FILE, root / "saved.db")
    code, problems, _ = verify(root)
    assert code == 1
    assert problems[0].startswith("Error: events 26-30 are not covered by any checkpoint")
    shutil.move(root / "saved.db", root / DB_FILE)
    db = StateDB.open(root)
    assert db is not None
    export(db, root)
    db.close()
    assert len((root / CHECKPOINTS).read_text().splitlines()) == 4
    shutil.move(root / DB_FILE, root / "saved.db")
    assert verify(root)[0] == 0
