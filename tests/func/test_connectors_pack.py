"""`cloned connectors pack`: a reproducible archive, its facts printed, and clear errors that
write nothing."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.packages.archive import extract, read_archive_manifest
from tests.conftest import REPO, cloned

NOTES = REPO / "connectors" / "notes"


def test_two_runs_give_byte_identical_archives_and_print_the_facts(tmp_path: Path) -> None:
    first = cloned("connectors", "pack", str(NOTES), "--out", str(tmp_path / "a.tar.gz"))
    second = cloned("connectors", "pack", str(NOTES), "--out", str(tmp_path / "b.tar.gz"), "--json")
    assert first.code == 0 and second.code == 0, first.err + second.err
    data = (tmp_path / "a.tar.gz").read_bytes()
    assert data == (tmp_path / "b.tar.gz").read_bytes()
    facts = json.loads(second.out)
    assert facts["name"] == "notes" and facts["version"] == "0.1.0"
    assert facts["publisher"] == "cloned" and facts["files"] == 2
    assert facts["size"] == len(data)
    assert facts["digest"] in first.out and "notes 0.1.0 (publisher cloned)" in first.out
    assert read_archive_manifest(tmp_path / "a.tar.gz").name == "notes"
    tree = extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert tree.digest == facts["tree_digest"]


def test_an_invalid_manifest_is_located_and_nothing_is_written(tmp_path: Path) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    (src / "connector.yaml").write_text("name: bad\nversion: 1.0.0\npublisher: me\nrun: 3\n")
    result = cloned("connectors", "pack", str(src), "--out", str(tmp_path / "bad.tar.gz"))
    assert result.code == 1
    assert f"{src / 'connector.yaml'}:4:" in result.err
    assert not (tmp_path / "bad.tar.gz").exists()


def test_bad_source_and_output_paths_are_clear_errors(tmp_path: Path) -> None:
    out = tmp_path / "x.tar.gz"
    missing = cloned("connectors", "pack", str(tmp_path / "nope"), "--out", str(out))
    assert missing.code == 1 and "nope" in missing.err
    no_parent = cloned("connectors", "pack", str(NOTES), "--out", str(tmp_path / "d" / "x.tgz"))
    assert no_parent.code == 1 and "--out" in no_parent.err
    folder = cloned("connectors", "pack", str(NOTES), "--out", str(tmp_path))
    assert folder.code == 1 and "is a folder" in folder.err
    as_json = cloned("connectors", "pack", str(tmp_path / "nope"), "--out", str(out), "--json")
    assert as_json.code == 1 and json.loads(as_json.out)["exit_code"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_symlink_in_the_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "c"
    src.mkdir()
    (src / "connector.yaml").write_bytes((NOTES / "connector.yaml").read_bytes())
    (src / "secrets").symlink_to("/etc/shadow")
    result = cloned("connectors", "pack", str(src), "--out", str(tmp_path / "c.tar.gz"))
    assert result.code == 1 and "secrets" in result.err and "symlink" in result.err
    assert not (tmp_path / "c.tar.gz").exists()
