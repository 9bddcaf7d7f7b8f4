"""The content-addressed store: read-only entries named by tree digest, verified by re-hashing,
and crash-safe (real processes killed mid-install leave nothing under a final name)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.packages.refusal import PackageRefused
from reconciler.packages.store import Store
from reconciler.packages.tree import Tree, read_folder


def fill(folder: Path, text: str = "print('hi')\n") -> Tree:
    (folder / "lib").mkdir(parents=True, exist_ok=True)
    (folder / "connector.yaml").write_text("name: notes\n")
    (folder / "server.py").write_text(text)
    (folder / "server.py").chmod(0o755)
    (folder / "lib" / "util.py").write_text("X = 1\n")
    return read_folder(folder)


def install(store: Store, text: str = "print('hi')\n") -> tuple[Tree, Path, bool]:
    with store.staging() as staged:
        tree = fill(staged, text)
        added = store.add(staged, tree)
    return tree, added.path, added.repaired


def modes(folder: Path) -> dict[str, int]:
    found = {".": folder.stat().st_mode & 0o777}
    for path in folder.rglob("*"):
        found[path.relative_to(folder).as_posix()] = path.stat().st_mode & 0o777
    return found


def test_add_makes_a_read_only_entry_named_by_digest(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, repaired = install(store)
    assert path == tmp_path / "store" / "sha256" / tree.digest.removeprefix("sha256:")
    assert store.path(tree.digest) == path and not repaired
    assert modes(path) == {
        ".": 0o555,
        "connector.yaml": 0o444,
        "lib": 0o555,
        "lib/util.py": 0o444,
        "server.py": 0o555,
    }
    assert store.verify(tree.digest) == []
    assert list((tmp_path / "store" / "staging").iterdir()) == []


def test_add_refuses_a_staged_folder_that_is_not_the_tree(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.staging() as staged:
        tree = fill(staged)
        (staged / "server.py").write_text("swapped\n")
        with pytest.raises(PackageRefused) as caught:
            store.add(staged, tree)
    assert caught.value.reason == "tree-changed" and "changed: server.py" in str(caught.value)
    assert store.path(tree.digest) is None
    assert list((tmp_path / "store" / "staging").iterdir()) == []


def test_verify_rehashes_and_names_what_changed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, _ = install(store)
    size_and_time = (path / "server.py").stat()
    (path / "server.py").chmod(0o755)
    (path / "server.py").write_text("print('HI')\n")  # same size
    os.utime(path / "server.py", ns=(size_and_time.st_atime_ns, size_and_time.st_mtime_ns))
    assert store.verify(tree.digest) == ["changed: server.py"]
    assert store.verify("sha256:" + "0" * 64) == [
        f"missing: no package {'sha256:' + '0' * 64} in the store"
    ]


def test_verify_sees_a_planted_cache_and_a_link(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, _ = install(store)
    (path / "lib").chmod(0o755)
    (path / "lib" / "__pycache__").mkdir()
    (path / "lib" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0")
    assert any("__pycache__" in line for line in store.verify(tree.digest))


def test_adding_again_keeps_an_intact_entry_and_repairs_an_altered_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, _ = install(store)
    inode = path.stat().st_ino
    _, again, repaired = install(store)
    assert again == path and not repaired and path.stat().st_ino == inode
    (path / "lib" / "util.py").chmod(0o644)
    (path / "lib" / "util.py").write_text("X = 2\n")
    _, again, repaired = install(store)
    assert repaired and store.verify(tree.digest) == []
    assert (path / "lib" / "util.py").read_text() == "X = 1\n"


def test_remove_and_export(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, _ = install(store)
    copied = store.export(tree.digest, tmp_path / "archive" / "notes")
    assert copied.digest == tree.digest
    (tmp_path / "archive" / "notes" / "server.py").write_text("writable copy\n")
    assert store.remove(tree.digest) and not path.exists()
    assert store.path(tree.digest) is None and not store.remove(tree.digest)
    with pytest.raises(PackageRefused) as caught:
        store.export(tree.digest, tmp_path / "again")
    assert caught.value.reason == "not-found"


def test_export_refuses_an_altered_entry(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tree, path, _ = install(store)
    (path / "server.py").chmod(0o755)
    (path / "server.py").write_text("altered\n")
    with pytest.raises(PackageRefused) as caught:
        store.export(tree.digest, tmp_path / "out")
    assert caught.value.reason == "tree-changed" and not (tmp_path / "out").exists()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from reconciler.packages.store import Store
    from reconciler.packages.tree import read_folder

    store, kill_at, text = Store(Path(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    renames = 0
    real_rename = os.rename

    def rename(src, dst):
        global renames
        renames += 1
        if renames == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(src, dst)

    os.rename = rename
    with store.staging() as staged:
        (staged / "lib").mkdir()
        (staged / "connector.yaml").write_text("name: notes\\n")
        (staged / "server.py").write_text(text)
        (staged / "lib" / "util.py").write_text("X = 1\\n")
        os.chmod(staged / "server.py", 0o755)
        tree = read_folder(staged)
        print(tree.digest, flush=True)
        if kill_at == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        store.add(staged, tree)
    """
)


def run_child(root: Path, kill_at: int, text: str = "print('hi')\n") -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(kill_at), text],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("kill_at", [0, 1])
def test_a_process_killed_mid_install_leaves_no_entry_and_its_leftovers_go(
    tmp_path: Path, kill_at: int
) -> None:
    root = tmp_path / "store"
    digest = run_child(root, kill_at)
    assert len(list((root / "staging").iterdir())) == 1, "the killed process left its staging"
    store = Store(root)
    assert store.path(digest) is None
    assert list((root / "staging").iterdir()) == []
    tree, _, _ = install(store)
    assert tree.digest == digest and store.verify(digest) == []


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_process_killed_while_repairing_never_leaves_a_half_entry(
    tmp_path: Path, kill_at: int
) -> None:
    root = tmp_path / "store"
    store = Store(root)
    tree, path, _ = install(store)
    (path / "server.py").chmod(0o755)
    (path / "server.py").write_text("altered\n")
    run_child(root, kill_at)
    store = Store(root)
    assert list((root / "staging").iterdir()) == [] and list((root / "trash").iterdir()) == []
    if kill_at == 1:  # before the altered entry left its name: still there, still reported
        assert store.verify(tree.digest) == ["changed: server.py"]
    else:  # after: no entry at all, so the next install starts afresh
        assert store.path(tree.digest) is None
    _, _, _ = install(store)
    assert store.verify(tree.digest) == []


def test_a_live_process_staging_is_left_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.staging() as staged:
        (staged / "f").write_text("in progress")
        Store(tmp_path / "store")
        assert (staged / "f").exists()
    assert not staged.exists()


def test_a_malformed_digest_is_a_clear_error(tmp_path: Path) -> None:
    from reconciler.errors import ClonedError

    with pytest.raises(ClonedError, match="not a package digest"):
        Store(tmp_path / "store").path("md5:abc")


def test_add_takes_only_folders_from_its_own_staging(tmp_path: Path) -> None:
    from reconciler.errors import UsageError

    store = Store(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tree = fill(elsewhere)
    with pytest.raises(UsageError):
        store.add(elsewhere, tree)
    assert store.path(tree.digest) is None and (elsewhere / "server.py").exists()


def test_an_extracted_archive_goes_from_staging_into_the_store(tmp_path: Path) -> None:
    from reconciler.packages.archive import extract, pack

    src = tmp_path / "src"
    src.mkdir()
    fill(src)
    (src / "connector.yaml").write_text(
        "name: notes\nversion: 0.1.0\npublisher: cloned\nrun: {command: [python, server.py]}\n"
    )
    pack(src, tmp_path / "notes.tar.gz")
    store = Store(tmp_path / "store")
    with store.staging() as staged:
        tree = extract(tmp_path / "notes.tar.gz", staged / "package")
        added = store.add(staged / "package", tree)
    assert store.verify(tree.digest) == [] and added.path.is_dir()
    assert list((tmp_path / "store" / "staging").iterdir()) == []
