"""A connector's content pinned by digest: the sorted listing of its files (path, executable
bit, size, sha256), read from a folder, from git objects at a commit, or produced by extracting
an archive (`archive.py`). A `path` source is pinned by this digest in the lock; the store
(`store.py`) keeps each package under it; builtins are checked against it (`builtin.py`).

The encoding the digest covers is in specs/package-format.md ("The tree digest")."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from reconciler.canonical import digest as canonical_digest
from reconciler.packages.limits import LIMITS, Limits
from reconciler.packages.names import CACHE_FOLDER, NameSet, check_name
from reconciler.packages.refusal import PackageRefused

TREE_FORMAT = "cloned.tree/v1"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class TreeFile:
    """One regular file of a package."""

    path: str
    executable: bool
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The file as it appears in the digested listing."""
        return {
            "path": self.path,
            "executable": self.executable,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Tree:
    """The files of a package, sorted by path."""

    files: tuple[TreeFile, ...]

    @cached_property
    def digest(self) -> str:
        """`sha256:<hex>` of the canonical JSON of the listing."""
        return canonical_digest(self._listing())

    @property
    def total_size(self) -> int:
        """The sum of the files' sizes."""
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        """The digest and the listing."""
        return {"digest": self.digest, **self._listing()}

    def _listing(self) -> dict[str, Any]:
        return {"format": TREE_FORMAT, "files": [f.to_json() for f in self.files]}


def tree_from_json(data: Any) -> Tree:
    """The Tree whose `to_json()` is `data`; ValueError when it is not one, or when its files
    do not hash to the digest it carries."""
    try:
        files = tuple(
            TreeFile(str(f["path"]), bool(f["executable"]), int(f["size"]), str(f["sha256"]))
            for f in data["files"]
        )
        claimed = data["digest"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a file listing ({exc!r})") from None
    tree = Tree(tuple(sorted(files, key=lambda f: f.path.encode())))
    if data.get("format") != TREE_FORMAT or tree.digest != claimed:
        raise ValueError("the listing does not match its digest")
    return tree


class TreeBuilder:
    """Collects files one by one under the limits and the naming rules, then makes a Tree."""

    def __init__(self, limits: Limits, where: str) -> None:
        self._limits = limits
        self._where = where
        self._names = NameSet()
        self._files: list[TreeFile] = []
        self._total = 0

    def admit(self, path: str, size: int) -> None:
        """Claim `path` of `size` bytes before it is read or written; refuse it if it may not
        be added (bad name, a clash with a name already claimed, past a limit)."""
        check_name(path)
        if len(self._files) >= self._limits.max_members:
            raise PackageRefused(
                "too-large", f"{self._where}: more than {self._limits.max_members:,} files"
            )
        if size > self._limits.max_member_bytes:
            raise PackageRefused(
                "too-large",
                f"{self._where}: {path} is {size:,} bytes; "
                f"the limit is {self._limits.max_member_bytes:,}",
            )
        if self._total + size > self._limits.max_total_bytes:
            raise PackageRefused(
                "too-large",
                f"{self._where}: more than {self._limits.max_total_bytes:,} bytes in all",
            )
        self._names.add(path)
        self._total += size

    def add(self, path: str, *, executable: bool, size: int, sha256: str) -> None:
        """Add a file that `admit` accepted, as it was read."""
        self._files.append(TreeFile(path, executable, size, sha256))

    def tree(self) -> Tree:
        """The files added so far, sorted by path."""
        return Tree(tuple(sorted(self._files, key=lambda f: f.path.encode())))


def read_folder(folder: Path, *, limits: Limits = LIMITS, skip_caches: bool = True) -> Tree:
    """The Tree of `folder`: regular files only (a link, device, fifo or socket anywhere is
    "unsafe-entry"); empty folders carry no content and, with `skip_caches`, neither do
    `__pycache__` folders (what running the code leaves behind)."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise PackageRefused("not-found", f"{folder}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise PackageRefused("unsafe-entry", f"{folder}: a symlink, not a folder")
    if not stat.S_ISDIR(info.st_mode):
        raise PackageRefused("not-found", f"{folder}: not a folder")
    builder = TreeBuilder(limits, str(folder))
    _walk(folder, "", builder, skip_caches=skip_caches)
    return builder.tree()


def _walk(folder: Path, prefix: str, builder: TreeBuilder, *, skip_caches: bool) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise PackageRefused("unreachable", f"{folder}: {exc.strerror}") from None
    for entry in entries:
        rel = prefix + entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if not (skip_caches and entry.name == CACHE_FOLDER):
                _walk(Path(entry.path), rel + "/", builder, skip_caches=skip_caches)
        elif stat.S_ISREG(mode):
            _add_file(Path(entry.path), rel, builder)
        else:
            raise PackageRefused("unsafe-entry", f"{entry.path}: {_kind(mode)}, not a regular file")


def _add_file(path: Path, rel: str, builder: TreeBuilder) -> None:
    # Opened without following links, then checked again: a file swapped for a link between the
    # listing and the read is refused, not followed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PackageRefused("unsafe-entry", f"{path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PackageRefused("unsafe-entry", f"{path}: not a regular file")
        builder.admit(rel, info.st_size)
        sha, size = hash_stream(handle, limit=info.st_size)
    if size != info.st_size:
        raise PackageRefused("tree-changed", f"{path}: changed while it was read")
    builder.add(rel, executable=bool(info.st_mode & stat.S_IXUSR), size=size, sha256=sha)


def hash_stream(handle: Any, *, limit: int) -> tuple[str, int]:
    """sha256 hex and length of what `handle.read` yields, reading at most `limit` + 1 bytes
    (one more tells a file that grew from one that did not)."""
    hasher = hashlib.sha256()
    size = 0
    while size <= limit:
        chunk = handle.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def read_committed(root: Path, commit: str, rel: str, *, limits: Limits = LIMITS) -> Tree:
    """The Tree of folder `rel` (relative to `root`, inside a git work tree) as committed at
    `commit`: the same digest as `read_folder` gives for the same content. A symlink or a
    submodule in it is "unsafe-entry"."""
    from reconciler.gitrepo.committed import ENTRY_FILE, ENTRY_LINK, read_folder_entries

    where = f"{rel} at {commit[:12]}"
    entries = read_folder_entries(
        root, commit, rel, max_entries=limits.max_members + 1, max_bytes=limits.max_member_bytes
    )
    if entries is None:
        raise PackageRefused("not-found", f"{where}: no such folder in the commit")
    builder = TreeBuilder(limits, where)
    for entry in entries:
        if entry.kind != ENTRY_FILE:
            kind = "a symlink" if entry.kind == ENTRY_LINK else "a submodule"
            raise PackageRefused("unsafe-entry", f"{where}: {entry.rel} is {kind}")
        if CACHE_FOLDER in entry.rel.split("/")[:-1]:
            continue
        builder.admit(entry.rel, entry.size)
        assert entry.data is not None  # read whenever the size is within max_bytes
        sha = hashlib.sha256(entry.data).hexdigest()
        builder.add(entry.rel, executable=entry.executable, size=entry.size, sha256=sha)
    return builder.tree()


def diff_trees(expected: Tree, actual: Tree) -> list[str]:
    """What differs between two trees, one readable line per file, sorted by path."""
    want = {f.path: f for f in expected.files}
    have = {f.path: f for f in actual.files}
    lines: list[tuple[str, str]] = []
    for path in sorted(want.keys() | have.keys()):
        before, after = want.get(path), have.get(path)
        if after is None:
            lines.append((path, f"missing: {path}"))
        elif before is None:
            lines.append((path, f"unexpected: {path}"))
        elif (before.sha256, before.size) != (after.sha256, after.size):
            lines.append((path, f"changed: {path}"))
        elif before.executable != after.executable:
            lines.append((path, f"mode changed: {path}"))
    return [line for _, line in lines]
