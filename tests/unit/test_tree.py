"""Tree digests: the same content pins to the same digest from a folder and from a commit, and
anything that is not a plain file is refused, naming it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from reconciler.packages.archive import Limits
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.tree import diff_trees, read_committed, read_folder
from tests.conftest import commit_all, git


def connector(folder: Path) -> Path:
    (folder / "lib" / "deep").mkdir(parents=True)
    (folder / "connector.yaml").write_text("name: notes\n")
    (folder / "server.py").write_text("print('hi')\n")
    (folder / "server.py").chmod(0o755)
    (folder / "lib" / "deep" / "ünï.txt").write_text("text\n")
    (folder / "empty").mkdir()
    return folder


def refusal(folder: Path, **limits: int) -> PackageRefused:
    with pytest.raises(PackageRefused) as caught:
        read_folder(folder, limits=Limits(**limits))
    return caught.value


def test_digest_covers_content_and_exec_bit_but_not_times_or_empty_folders(
    tmp_path: Path,
) -> None:
    first = read_folder(connector(tmp_path / "a"))
    second_folder = connector(tmp_path / "b")
    os.utime(second_folder / "server.py", (5, 5))
    (second_folder / "other-empty").mkdir()
    assert read_folder(second_folder).digest == first.digest
    assert [f.path for f in first.files] == ["connector.yaml", "lib/deep/ünï.txt", "server.py"]
    (second_folder / "server.py").chmod(0o644)
    chmodded = read_folder(second_folder)
    assert chmodded.digest != first.digest
    assert diff_trees(first, chmodded) == ["mode changed: server.py"]
    assert first.to_json()["digest"] == first.digest and first.digest.startswith("sha256:")


def test_diff_trees_names_changed_missing_and_unexpected_files(tmp_path: Path) -> None:
    folder = connector(tmp_path / "a")
    before = read_folder(folder)
    (folder / "server.py").write_text("print('evil')\n")
    (folder / "connector.yaml").unlink()
    (folder / "extra.py").write_text("")
    assert diff_trees(before, read_folder(folder)) == [
        "missing: connector.yaml",
        "unexpected: extra.py",
        "changed: server.py",
    ]


def test_pycache_is_skipped_unless_asked_and_stray_pyc_refused(tmp_path: Path) -> None:
    folder = connector(tmp_path / "a")
    before = read_folder(folder)
    (folder / "lib" / "__pycache__").mkdir()
    (folder / "lib" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert read_folder(folder).digest == before.digest
    with pytest.raises(PackageRefused) as caught:
        read_folder(folder, skip_caches=False)
    assert "__pycache__" in str(caught.value)
    (folder / "lib" / "y.pyc").write_bytes(b"\0")
    assert refusal(folder).reason == "unsafe-entry"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "socket", "folder-link"])
def test_special_files_are_unsafe_entries_named(tmp_path: Path, kind: str) -> None:
    folder = connector(tmp_path / "a")
    target = folder / "lib" / "odd"
    if kind == "symlink":
        target.symlink_to("../server.py")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder-link":
        target.symlink_to(tmp_path, target_is_directory=True)
    else:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(target))
    refused = refusal(folder)
    assert refused.reason == "unsafe-entry" and "lib/odd" in str(refused)


def test_the_folder_itself_must_be_a_real_folder(tmp_path: Path) -> None:
    folder = connector(tmp_path / "a")
    (tmp_path / "link").symlink_to(folder)
    assert refusal(tmp_path / "link").reason == "unsafe-entry"
    assert refusal(tmp_path / "missing").reason == "not-found"
    assert refusal(folder / "server.py").reason == "not-found"


def test_limits_refuse_too_many_and_too_big(tmp_path: Path) -> None:
    folder = connector(tmp_path / "a")
    assert refusal(folder, max_members=2).reason == "too-large"
    assert refusal(folder, max_member_bytes=6).reason == "too-large"
    assert refusal(folder, max_total_bytes=20).reason == "too-large"


def test_case_twins_are_refused(tmp_path: Path) -> None:
    folder = connector(tmp_path / "a")
    (folder / "Server.py").write_text("")
    assert refusal(folder).reason == "unsafe-entry"


def test_read_committed_gives_the_folder_digest(repo: Path) -> None:
    folder = connector(repo / "connectors" / "notes")
    (folder / "lib" / "__pycache__").mkdir()
    (folder / "lib" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (repo / "connectors" / "notes-other").mkdir()
    (repo / "connectors" / "notes-other" / "x").write_text("not part of notes")
    commit = commit_all(repo, "notes")
    committed = read_committed(repo, commit, "connectors/notes")
    assert committed.digest == read_folder(folder).digest
    (folder / "server.py").write_text("changed after the commit\n")
    assert read_committed(repo, commit, "connectors/notes").digest == committed.digest
    assert diff_trees(committed, read_folder(folder)) == ["changed: server.py"]


def test_read_committed_from_a_workspace_below_the_top(repo: Path) -> None:
    folder = connector(repo / "sub" / "connectors" / "notes")
    commit = commit_all(repo, "notes")
    tree = read_committed(repo / "sub", commit, "connectors/notes")
    assert tree.digest == read_folder(folder).digest


def test_read_committed_refuses_links_submodules_and_missing_folders(repo: Path) -> None:
    folder = connector(repo / "c")
    (folder / "link").symlink_to("server.py")
    commit = commit_all(repo, "link")
    with pytest.raises(PackageRefused) as caught:
        read_committed(repo, commit, "c")
    assert caught.value.reason == "unsafe-entry" and "link" in str(caught.value)
    (folder / "link").unlink()
    sha = commit_all(repo, "no link")
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},c/sub", cwd=repo)
    git("commit", "-q", "-m", "submodule", cwd=repo)
    with_sub = git("rev-parse", "HEAD", cwd=repo).strip()
    with pytest.raises(PackageRefused) as caught:
        read_committed(repo, with_sub, "c")
    assert caught.value.reason == "unsafe-entry" and "submodule" in str(caught.value)
    for missing in ("nope", "c/server.py"):
        with pytest.raises(PackageRefused) as caught:
            read_committed(repo, sha, missing)
        assert caught.value.reason == "not-found"


def test_read_committed_refuses_an_oversized_file_without_reading_it(repo: Path) -> None:
    folder = connector(repo / "c")
    (folder / "big.bin").write_bytes(b"x" * 5000)
    commit = commit_all(repo, "big")
    with pytest.raises(PackageRefused) as caught:
        read_committed(repo, commit, "c", limits=Limits(max_member_bytes=4096))
    assert caught.value.reason == "too-large" and "big.bin" in str(caught.value)
