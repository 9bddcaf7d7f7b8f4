"""The artifact store, the DSSE encoding and the provenance's checks of what the runner gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.artifacts import dsse, store
from reconciler.artifacts.provenance import RunFacts, Subject, statement
from reconciler.artifacts.publish import encode
from reconciler.errors import ClonedError


def test_pae_is_the_dsse_specs_encoding() -> None:
    # The example of the DSSE protocol document (secure-systems-lab/dsse, protocol.md).
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # Lengths count bytes, not characters.
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_the_store_writes_once_and_refuses_changed_bytes(tmp_path: Path) -> None:
    digest = store.put(tmp_path, b"hello")
    path = store.object_path(tmp_path, digest)
    assert path.read_bytes() == b"hello" and path.stat().st_mode & 0o777 == 0o600
    assert store.put(tmp_path, b"hello") == digest and store.read(tmp_path, digest) == b"hello"
    path.write_bytes(b"hullo")
    with pytest.raises(store.ArtifactDamaged, match="bytes have changed"):
        store.read(tmp_path, digest)
    with pytest.raises(store.ArtifactDamaged, match="bytes have changed"):
        store.put(tmp_path, b"hello")  # never rewritten, and never silently kept either
    with pytest.raises(ClonedError, match="not an artifact digest"):
        store.object_path(tmp_path, "sha256:../../etc")
    with pytest.raises(ClonedError, match="not a run id"):
        store.envelope_path(tmp_path, "../run")


def test_outputs_encode_as_utf8_text_or_canonical_json() -> None:
    assert encode("é\n") == ("é\n".encode(), "text/plain; charset=utf-8")
    assert encode({"b": [1.5, None], "a": True}) == (
        b'{"a":true,"b":[1.5,null]}',
        "application/json",
    )
    for bad in (float("inf"), {"x": object()}, "\ud800"):
        with pytest.raises(ClonedError, match="not a JSON value"):
            encode(bad)


def facts(**changes: object) -> RunFacts:
    values: dict[str, object] = {
        "run_id": "r1",
        "run_name": "weekly",
        "pipeline": "report",
        "pipeline_digest": "sha256:" + "a" * 64,
        "inputs": {},
        "inputs_digest": "sha256:" + "b" * 64,
        "connectors": {},
        "models": [],
        "approvals": [],
        "steps": [],
        "started_at": "2026-12-01T09:58:00Z",
        "finished_at": "2026-12-01T09:59:30Z",
    }
    values.update(changes)
    return RunFacts(**values)  # type: ignore[arg-type]


def test_the_statement_refuses_digests_that_are_not_sha256() -> None:
    subject = Subject("report", "sha256:" + "c" * 64, "text/plain", 3)
    assert statement(facts(), [subject])["subject"] == [
        {"name": "report", "digest": {"sha256": "c" * 64}}
    ]
    with pytest.raises(ClonedError, match="pipeline_digest is not a sha256: digest"):
        statement(facts(pipeline_digest="md5:abc"), [subject])
    with pytest.raises(ClonedError, match="connector time package"):
        statement(facts(connectors={"time": {"package": "sha256:short"}}), [subject])
    with pytest.raises(ClonedError, match="model local baseUrl"):
        statement(facts(models=[{"name": "local", "model": "m"}]), [subject])


def test_a_run_without_outputs_has_nothing_to_publish(tmp_path: Path) -> None:
    from reconciler.artifacts.publish import publish
    from reconciler.state.db import StateDB

    (tmp_path / ".cloned").mkdir()
    db = StateDB.open(tmp_path)
    assert db is not None
    with db, pytest.raises(ClonedError, match="has no outputs to publish"):
        publish(tmp_path, db, facts(), {})
    assert not (tmp_path / ".cloned/state/audit-key").exists()
