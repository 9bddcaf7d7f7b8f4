"""The content-addressed store of installed packages, `.cloned/state/store/`: each package is a
read-only folder named by its tree digest (`tree.py`), verified by re-hashing before it is
loaded. Install stages a package in `staging/`, on the same file system, and `add` moves it
into place with one rename, so an entry under its final name is always complete.

    store/sha256/<hex>/        a package (files 0444 or 0555, folders 0555)
    store/trees/<hex>.json     its file listing, to say which files differ when it does not verify
    store/staging/<pid>-<id>/  a package being installed by process <pid>
    store/trash/<pid>-<id>/    an entry being removed or replaced by process <pid>

A process killed anywhere leaves at most a folder in `staging/` or `trash/`; the next Store
opened on the same folder deletes those whose process is gone (specs/package-format.md)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.atomic import ensure_private_dir, write_atomic
from reconciler.canonical import canonical_json, parse_json
from reconciler.errors import ClonedError, UsageError
from reconciler.packages.limits import LIMITS, Limits
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.tree import Tree, diff_trees, read_folder, tree_from_json
from reconciler.state.lock import pid_alive

DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_OWNED = re.compile(r"^(\d+)-[0-9a-f]+$")
READ_ONLY_FILE = 0o444
READ_ONLY_EXEC = 0o555
READ_ONLY_DIR = 0o555


@dataclass(frozen=True)
class Added:
    """Where `Store.add` put a package, and whether it replaced an entry that had been
    altered (`repaired`)."""

    path: Path
    repaired: bool


class Store:
    """The package store rooted at `root` (normally `.cloned/state/store`)."""

    def __init__(self, root: Path, *, limits: Limits = LIMITS) -> None:
        self.root = root
        self._limits = limits
        for folder in ("sha256", "trees", "archives", "staging", "trash"):
            ensure_private_dir(root / folder)
        self._clean_leftovers()

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh, empty folder inside the store, removed on exit unless `add` took it."""
        folder = self.root / "staging" / _owned_name()
        folder.mkdir(mode=0o700)
        try:
            yield folder
        finally:
            _remove_tree(folder)

    def add(self, staged: Path, tree: Tree) -> Added:
        """Move `staged` (a folder from `staging()`, or a new folder inside one, such as the
        `dest` of `archive.extract`, holding exactly `tree`) into the store as
        `sha256/<hex of tree.digest>/`, read-only. An intact entry already there is kept and
        `staged` discarded; an altered one is replaced (`repaired`)."""
        staging = self.root / "staging"
        if not staged.is_relative_to(staging) or len(staged.relative_to(staging).parts) < 1:
            raise UsageError(f"{staged}: not a folder from this store's staging()")
        actual = read_folder(staged, limits=self._limits, skip_caches=False)
        differences = diff_trees(tree, actual)
        if differences:
            raise PackageRefused(
                "tree-changed", f"{staged}: not the files to install: {', '.join(differences)}"
            )
        final = self._entry(tree.digest)
        write_atomic(self._listing(tree.digest), canonical_json(tree.to_json()))
        if _is_entry(final) and not self.verify(tree.digest):
            _remove_tree(staged)
            return Added(final, repaired=False)
        _seal(staged)
        repaired = os.path.lexists(final)  # an altered folder, or a file or link put there
        if repaired:
            self._discard(final)
        try:
            os.rename(staged, final)
        except OSError:
            # Another process added the same package first: keep its entry if it is intact.
            if self.verify(tree.digest):
                raise
            _remove_tree(staged)
            return Added(final, repaired=False)
        os.chmod(final, READ_ONLY_DIR)
        _fsync_dir(final.parent)
        return Added(final, repaired=repaired)

    def path(self, digest: str) -> Path | None:
        """The folder of the package with tree `digest`, or None when the store has none."""
        final = self._entry(digest)
        return final if _is_entry(final) else None

    def verify(self, digest: str) -> list[str]:
        """What differs between the stored package and `digest`, re-hashing every file; empty
        means intact."""
        final = self._entry(digest)
        if not _is_entry(final):
            return [f"missing: no package {digest} in the store"]
        try:
            actual = read_folder(final, limits=self._limits, skip_caches=False)
        except PackageRefused as exc:
            return [str(exc)]
        if actual.digest == digest:
            return []
        expected = self._recorded(digest)
        if expected is None:
            return [f"changed: the files hash to {actual.digest}"]
        return diff_trees(expected, actual) or [f"changed: the files hash to {actual.digest}"]

    def remove(self, digest: str) -> bool:
        """Delete the package with tree `digest`; False when there was none."""
        final = self._entry(digest)
        if not os.path.lexists(final):
            return False
        self._discard(final)
        self._listing(digest).unlink(missing_ok=True)
        return True

    def export(self, digest: str, dest: Path) -> Tree:
        """Copy the package out to the new folder `dest`, writable (for archiving before a
        purge); the copy must be intact. Returns its Tree."""
        final = self.path(digest)
        if final is None:
            raise PackageRefused("not-found", f"no package {digest} in the store")
        if dest.exists():
            raise UsageError(f"{dest}: already exists; export writes a new folder")
        shutil.copytree(final, dest, symlinks=True, copy_function=shutil.copy)
        _chmod_dirs(dest, 0o755)
        for file in read_folder(dest, limits=self._limits, skip_caches=False).files:
            os.chmod(dest / file.path, 0o755 if file.executable else 0o644)
        copied = read_folder(dest, limits=self._limits, skip_caches=False)
        if copied.digest != digest:
            _remove_tree(dest)
            raise PackageRefused("tree-changed", f"{final}: altered in the store; not exported")
        return copied

    def record_archive(self, sha256: str, tree: str) -> None:
        """Remember that the verified archive `sha256` (hex) unpacks to tree `tree`, so a
        package already stored (another connector's, or one restored from an archive) is not
        downloaded again."""
        if DIGEST.match(tree) and re.fullmatch(r"[0-9a-f]{64}", sha256):
            write_atomic(self.root / "archives" / sha256, tree)

    def tree_of_archive(self, sha256: str) -> str | None:
        """The tree a verified archive unpacked to, when `record_archive` noted it."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        try:
            tree = (self.root / "archives" / sha256).read_text().strip()
        except OSError:
            return None
        return tree if DIGEST.match(tree) else None

    def _entry(self, digest: str) -> Path:
        match = DIGEST.match(digest)
        if match is None:
            raise ClonedError(f"not a package digest: {digest!r} (sha256:<64 hex digits>)")
        return self.root / "sha256" / match[1]

    def _listing(self, digest: str) -> Path:
        return self.root / "trees" / f"{self._entry(digest).name}.json"

    def _recorded(self, digest: str) -> Tree | None:
        try:
            tree = tree_from_json(parse_json(self._listing(digest).read_bytes()))
        except (OSError, ValueError):
            return None
        return tree if tree.digest == digest else None

    def _discard(self, final: Path) -> None:
        """Take `final` out of its name in one rename, then delete it at leisure."""
        trash = self.root / "trash" / _owned_name()
        if _is_entry(final):
            os.chmod(final, 0o700)  # moving a folder rewrites its `..`
        os.rename(final, trash)
        _remove_tree(trash)

    def _clean_leftovers(self) -> None:
        for folder in ("staging", "trash"):
            for entry in os.scandir(self.root / folder):
                match = _OWNED.match(entry.name)
                if match is None or not (int(match[1]) == os.getpid() or pid_alive(int(match[1]))):
                    _remove_tree(Path(entry.path))


def _is_entry(final: Path) -> bool:
    """Whether a store entry is there: a real folder (a link put in its place, even to an
    intact copy, is not the store's, and a file is not a package)."""
    return final.is_dir() and not final.is_symlink()


def _owned_name() -> str:
    return f"{os.getpid()}-{secrets.token_hex(8)}"

    return True


def _seal(folder: Path) -> None:
    """Make every file read-only (keeping the execute bit) and flushed, and every folder
    below `folder` read-only; `folder` itself stays writable until it is renamed."""
    for current, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(current, name)
            mode = os.lstat(path).st_mode
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(path, READ_ONLY_EXEC if mode & stat.S_IXUSR else READ_ONLY_FILE)
        for name in dirs:
            if not os.path.islink(os.path.join(current, name)):
                os.chmod(os.path.join(current, name), READ_ONLY_DIR)
        _fsync_dir(Path(current))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chmod_dirs(folder: Path, mode: int) -> None:
    """Set the mode of `folder` and the folders below it, never through a link."""
    os.chmod(folder, mode)
    for current, dirs, _ in os.walk(folder):
        for name in dirs:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, mode)


def _remove_tree(folder: Path) -> None:
    """Delete `folder` even when its folders are read-only; nothing if it is gone."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.is_dir():
        _chmod_dirs(folder, 0o700)
        shutil.rmtree(folder, ignore_errors=True)
