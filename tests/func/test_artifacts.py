"""Run artifacts: publish outputs, list/show/verify them through the CLI, and tamper with them.

The state database is a real one made by `cloned apply` of a small workspace (so the audit key
is the one the first audit export pinned); outputs are published as the runner will publish
them, from a `RunFacts` built here. The envelope is verified independently with
securesystemslib's DSSE implementation, and the statement read with plain `json`, so a bug
shared by Cloned's signer and verifier cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from reconciler.artifacts.provenance import RunFacts
from reconciler.artifacts.publish import Published, publish
from reconciler.errors import ClonedError
from reconciler.redact import start_command
from reconciler.state.db import DB_FILE, StateDB
from tests.conftest import cloned

NOW = {"CLONED_NOW": "2026-12-01T10:00:00+00:00"}
PACKAGE = "sha256:" + "1" * 64
PIN_NOW, PIN_CONVERT = "sha256:" + "2" * 64, "sha256:" + "3" * 64
CHANGE = "sha256:" + "4" * 64
OUTPUTS: dict[str, Any] = {
    "report": "# Weekly report\n\nAll quiet.\n",
    "issues": {"count": 2, "items": [{"title": "b"}, {"title": "a"}], "ratio": 0.5},
}
ENVELOPES = ".cloned/state/artifacts/runs"


def facts(run_id: str = "run-7f3c9a", **changes: Any) -> RunFacts:
    """The facts of a finished run with every kind of dependency."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "run_name": "weekly",
        "pipeline": "report",
        "pipeline_digest": "sha256:" + "a" * 64,
        "inputs": {"topic": "agents", "days": 7},
        "inputs_digest": "sha256:" + "b" * 64,
        "connectors": {
            "time": {"package": PACKAGE, "tools": {"now": PIN_NOW, "convert": PIN_CONVERT}}
        },
        "models": [{"name": "local", "model": "qwen2.5-7b", "baseUrl": "http://127.0.0.1:8000/v1"}],
        "approvals": [
            {
                "request": "req-1",
                "step": "publish",
                "approvers": ["bob", "alice"],
                "change_hash": CHANGE,
            }
        ],
        "steps": [
            {
                "name": "now",
                "kind": "tool",
                "args_digest": "sha256:" + "c" * 64,
                "output_digest": "sha256:" + "d" * 64,
            },
            {
                "name": "draft",
                "kind": "model",
                "args_digest": "sha256:" + "e" * 64,
                "output_digest": None,
            },
        ],
        "started_at": "2026-12-01T09:58:00Z",
        "finished_at": "2026-12-01T09:59:30Z",
    }
    values.update(changes)
    return RunFacts(**values)


@pytest.fixture
def root(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace applied once: a state database with the audit key pinned by its export."""
    monkeypatch.setenv("CLONED_NOW", NOW["CLONED_NOW"])
    assert cloned("apply", "--no-commit", cwd=workspace, env=NOW).code == 0
    return workspace


def publish_run(root: Path, run: RunFacts, outputs: dict[str, Any] | None = None) -> Published:
    with StateDB.existing(root) as db:
        assert db is not None
        return publish(root, db, run, OUTPUTS if outputs is None else outputs)


def pinned_key(root: Path) -> str:
    with sqlite3.connect(root / DB_FILE) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'audit_public_key'").fetchone()
    return str(row[0])


def fingerprint(public_line: str) -> str:
    """`SHA256:...` of a public key line, as ssh-keygen -l shows it (computed here, not by
    Cloned)."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def raw_public_key(public_line: str) -> bytes:
    """The 32 key bytes of an `ssh-ed25519` line (RFC 8709 wire format), read by hand."""
    blob = base64.b64decode(public_line.split()[1])
    (length,) = struct.unpack(">I", blob[:4])
    assert blob[4 : 4 + length] == b"ssh-ed25519"
    (key_length,) = struct.unpack(">I", blob[4 + length : 8 + length])
    return blob[8 + length : 8 + length + key_length]


def envelope_of(root: Path, run_id: str = "run-7f3c9a") -> dict[str, Any]:
    text = (root / ENVELOPES / f"{run_id}.intoto.jsonl").read_text()
    assert text.count("\n") == 1 and text.endswith("\n")
    value: dict[str, Any] = json.loads(text)
    return value


def write_envelope(root: Path, value: dict[str, Any], run_id: str = "run-7f3c9a") -> None:
    (root / ENVELOPES / f"{run_id}.intoto.jsonl").write_text(json.dumps(value) + "\n")


def verify_fails(root: Path, run_id: str = "run-7f3c9a") -> str:
    """Run `cloned artifacts verify`, expect exit 1, and return the failure it names."""
    result = cloned("artifacts", "verify", run_id, cwd=root)
    assert result.code == 1, result.out + result.err
    assert "does not verify" in result.err
    as_json = cloned("artifacts", "verify", run_id, "--json", cwd=root)
    assert as_json.code == 1
    failure: str = json.loads(as_json.out)["failure"]
    assert failure in result.err
    return failure


def test_outputs_are_stored_listed_shown_and_their_provenance_verifies(root: Path) -> None:
    published = publish_run(root, facts())
    assert [s.name for s in published.subjects] == ["issues", "report"]

    listed = json.loads(cloned("artifacts", "list", "--json", cwd=root).out)["artifacts"]
    by_name = {a["name"]: a for a in listed}
    assert sorted(by_name) == ["issues", "report"]
    report = by_name["report"]
    assert report["media_type"] == "text/plain; charset=utf-8"
    assert report["size"] == len(OUTPUTS["report"].encode())
    stored = root / report["path"]
    assert stored.read_bytes() == OUTPUTS["report"].encode()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert by_name["issues"]["media_type"] == "application/json"
    text = cloned("artifacts", "list", "--run", "run-7f3c9a", cwd=root).out
    assert "run-7f3c9a  report  sha256:" in text

    shown = cloned("artifacts", "show", "report", cwd=root)
    assert shown.code == 0 and shown.out == OUTPUTS["report"]
    issues = cloned("artifacts", "show", by_name["issues"]["digest"][:15], cwd=root).out
    assert json.loads(issues) == OUTPUTS["issues"]
    meta = json.loads(cloned("artifacts", "show", "issues", "--json", cwd=root).out)
    assert meta["digest"] == by_name["issues"]["digest"] and meta["run_id"] == "run-7f3c9a"

    verified = cloned("artifacts", "verify", "run-7f3c9a", cwd=root)
    assert verified.code == 0, verified.err
    assert "signed by the workspace's audit key" in verified.out
    report_json = json.loads(cloned("artifacts", "verify", "run-7f3c9a", "--json", cwd=root).out)
    assert report_json["verified"] is True and report_json["failure"] is None


def test_the_envelope_verifies_with_securesystemslib_and_the_statement_reads_as_json(
    root: Path,
) -> None:
    publish_run(root, facts())
    line = envelope_of(root)
    public = pinned_key(root)
    key = SSlibKey(
        fingerprint(public), "ed25519", "ed25519", {"public": raw_public_key(public).hex()}
    )
    envelope = Envelope.from_dict(json.loads(json.dumps(line)))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert list(envelope.verify([key], 1)) == [fingerprint(public)]
    assert line["signatures"][0]["keyid"] == fingerprint(public)

    statement = json.loads(base64.b64decode(line["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    listed = json.loads(cloned("artifacts", "list", "--json", cwd=root).out)["artifacts"]
    assert statement["subject"] == [
        {"name": a["name"], "digest": {"sha256": a["digest"].removeprefix("sha256:")}}
        for a in sorted(listed, key=lambda a: a["name"])
    ]
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == "https://cloned.dev/pipeline-run/v1"
    assert build["externalParameters"] == {
        "run": "weekly",
        "pipeline": "report",
        "inputs": {"topic": "agents", "days": 7},
    }
    assert build["internalParameters"] == {
        "pipelineDigest": "sha256:" + "a" * 64,
        "inputsDigest": "sha256:" + "b" * 64,
    }
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["connector/time"]["digest"] == {"sha256": "1" * 64}
    assert deps["connector/time/tool/now"]["digest"] == {"sha256": "2" * 64}
    assert deps["connector/time/tool/convert"]["digest"] == {"sha256": "3" * 64}
    assert deps["model/local"]["uri"] == "http://127.0.0.1:8000/v1"
    assert deps["model/local"]["annotations"] == {"model": "qwen2.5-7b"}
    assert deps["approval/req-1"]["digest"] == {"sha256": "4" * 64}
    assert deps["approval/req-1"]["annotations"] == {
        "step": "publish",
        "approvers": ["alice", "bob"],
    }
    details = statement["predicate"]["runDetails"]
    assert details["builder"]["id"] == "https://cloned.dev/runner/v1"
    assert details["metadata"] == {
        "invocationId": "run-7f3c9a",
        "startedOn": "2026-12-01T09:58:00Z",
        "finishedOn": "2026-12-01T09:59:30Z",
    }
    steps = [(b["name"], b["annotations"]["kind"], b.get("digest")) for b in details["byproducts"]]
    assert steps == [("step/now", "tool", {"sha256": "d" * 64}), ("step/draft", "model", None)]
    # The payload is canonical JSON: keys sorted, no whitespace.
    payload = base64.b64decode(line["payload"])
    assert payload == json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def test_the_same_outputs_give_byte_identical_artifacts_and_envelopes(root: Path) -> None:
    first = publish_run(root, facts("run-1"))
    second = publish_run(root, facts("run-2"))
    assert [s.digest for s in first.subjects] == [s.digest for s in second.subjects]
    files = sorted((root / ".cloned/state/artifacts/sha256").iterdir())
    assert len(files) == 2  # one file per distinct content, shared by both runs
    before = first.envelope.read_bytes()
    again = publish_run(root, facts("run-1"))  # the runner publishing again after a resume
    assert again.subjects == first.subjects and first.envelope.read_bytes() == before
    first.envelope.unlink()
    publish_run(root, facts("run-1"))  # Ed25519 is deterministic: the same facts, the same bytes
    assert first.envelope.read_bytes() == before

    with pytest.raises(ClonedError, match="already published other artifacts"):
        publish_run(root, facts("run-1"), {"report": "something else"})
    ambiguous = cloned("artifacts", "show", "report", cwd=root)
    assert ambiguous.code == 1 and "run-1, run-2" in ambiguous.err and "--run" in ambiguous.err
    chosen = cloned("artifacts", "show", "report", "--run", "run-2", cwd=root)
    assert chosen.code == 0 and chosen.out == OUTPUTS["report"]


def test_an_output_that_is_not_json_is_refused_and_nothing_is_recorded(root: Path) -> None:
    with pytest.raises(ClonedError, match="not a JSON value"):
        publish_run(root, facts(), {"report": "fine", "bad": {"x": float("nan")}})
    assert json.loads(cloned("artifacts", "list", "--json", cwd=root).out) == {"artifacts": []}
    assert not (root / ENVELOPES / "run-7f3c9a.intoto.jsonl").exists()


def test_a_changed_artifact_file_is_refused_by_verify_and_show(root: Path) -> None:
    published = publish_run(root, facts())
    report = next(s for s in published.subjects if s.name == "report")
    stored = root / ".cloned/state/artifacts/sha256" / report.digest.removeprefix("sha256:")
    stored.write_text("# Weekly report\n\nAll quiet. (edited)\n")
    failure = verify_fails(root)
    assert failure.startswith("files: artifact report:") and "bytes have changed" in failure
    shown = cloned("artifacts", "show", "report", cwd=root)
    assert shown.code == 1 and "bytes have changed" in shown.err and shown.out == ""
    stored.unlink()
    assert "the artifact file is missing" in verify_fails(root)


def test_a_changed_envelope_payload_does_not_verify(root: Path) -> None:
    publish_run(root, facts())
    line = envelope_of(root)
    statement = json.loads(base64.b64decode(line["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["inputs"]["topic"] = "other"
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    line["payload"] = base64.b64encode(payload).decode()
    write_envelope(root, line)
    failure = verify_fails(root)
    assert failure.startswith("signature: the signature does not verify")


def test_a_signature_by_another_key_does_not_verify(root: Path) -> None:
    publish_run(root, facts())
    line = envelope_of(root)
    payload = base64.b64decode(line["payload"])
    kind = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)
    other = Ed25519PrivateKey.generate()
    signature = base64.b64encode(other.sign(pae)).decode()

    line["signatures"] = [{"keyid": "SHA256:someone-else", "sig": signature}]
    write_envelope(root, line)
    failure = verify_fails(root)
    assert "is not signed by the workspace's audit key" in failure
    assert "SHA256:someone-else" in failure

    # Claiming the workspace key's id does not help: the pinned key is what is checked.
    line["signatures"] = [{"keyid": fingerprint(pinned_key(root)), "sig": signature}]
    write_envelope(root, line)
    assert verify_fails(root).startswith("signature: the signature does not verify")


@pytest.mark.parametrize("change", ["drop", "add", "digest"])
def test_a_subject_list_that_differs_from_the_records_does_not_verify(
    root: Path, change: str
) -> None:
    published = publish_run(root, facts())
    extra = publish_run(root, facts("run-other"), {"notes": "extra"}).subjects[0]
    with sqlite3.connect(root / DB_FILE) as connection:
        if change == "drop":
            connection.execute(
                "DELETE FROM artifacts WHERE run_id = 'run-7f3c9a' AND name = 'issues'"
            )
        elif change == "add":
            connection.execute(
                "INSERT INTO artifacts VALUES ('run-7f3c9a', 'notes', ?, 'text/plain', ?, 'x')",
                (extra.digest, extra.size),
            )
        else:
            connection.execute(
                "UPDATE artifacts SET digest = ?, size = ? "
                "WHERE run_id = 'run-7f3c9a' AND name = 'report'",
                (extra.digest, extra.size),
            )
    failure = verify_fails(root)
    expected = {
        "drop": "subject issues is in the statement but not recorded for the run",
        "add": "artifact notes is recorded for the run but not a subject of the statement",
        "digest": "subject report: the statement's sha256 differs from the recorded one",
    }
    assert failure == f"statement: {expected[change]}"
    assert published.subjects  # the run was published before the rows changed


def test_a_missing_or_foreign_envelope_and_an_unknown_run_fail_by_name(root: Path) -> None:
    publish_run(root, facts())
    publish_run(root, facts("run-b"), {"report": "b"})
    path = root / ENVELOPES / "run-7f3c9a.intoto.jsonl"
    # run-b's valid envelope in run-7f3c9a's place: signed, but for another run.
    path.write_bytes((root / ENVELOPES / "run-b.intoto.jsonl").read_bytes())
    assert verify_fails(root) == "statement: the statement is for run 'run-b', not run-7f3c9a"
    path.write_text("not json\n")
    assert "not a DSSE envelope" in verify_fails(root)
    path.unlink()
    assert "the provenance envelope is missing" in verify_fails(root)
    assert verify_fails(root, "run-none") == "recorded: no artifacts are recorded for run run-none"


def test_publishing_before_any_audit_export_pins_the_key_the_export_then_uses(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLONED_NOW", NOW["CLONED_NOW"])
    db = StateDB.open(workspace)
    assert db is not None
    with db:
        publish(workspace, db, facts(), OUTPUTS)
    key = pinned_key(workspace)
    assert (workspace / ".cloned/state/audit-key").stat().st_mode & 0o077 == 0
    assert cloned("artifacts", "verify", "run-7f3c9a", cwd=workspace).code == 0
    # The first apply's audit export signs its checkpoint with the key publish pinned.
    assert cloned("apply", "--no-commit", cwd=workspace, env=NOW).code == 0
    checkpoint = json.loads((workspace / ".cloned/audit/checkpoints.jsonl").read_text())
    assert checkpoint["key"].split()[:2] == key.split()[:2]


def test_a_secret_value_never_reaches_an_artifact_or_its_provenance(root: Path) -> None:
    secret = "tok-3f9a1c77e2b04d5a"
    start_command().register(secret)  # as the vault registers every value it reads
    try:
        run = facts(inputs={"topic": f"uses {secret}"})
        published = publish_run(root, run, {"report": f"key {secret}", "data": {"k": [secret]}})
    finally:
        start_command()
    for subject in published.subjects:
        stored = root / ".cloned/state/artifacts/sha256" / subject.digest.removeprefix("sha256:")
        assert secret not in stored.read_text() and "[REDACTED]" in stored.read_text()
    payload = base64.b64decode(envelope_of(root)["payload"]).decode()
    assert secret not in payload and "[REDACTED]" in payload
    assert cloned("artifacts", "verify", "run-7f3c9a", cwd=root).code == 0
