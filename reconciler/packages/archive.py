"""Connector archives: how a folder holding `connector.yaml` becomes one reproducible
`.tar.gz` (`pack`, for `cloned connectors pack` and publishing), and how an archive from
anywhere is read (`read_archive_manifest`) or unpacked (`extract`) without trusting it.

The format and every refusal are in specs/package-format.md. Reading is one strict pass over
one gzip stream (`_Inflater`): the decompressed bytes are counted as they come, so a bomb is
refused at the limit whatever the headers claim, and anything after the stream, or a stream
that stops early, is "tampered". Each member is checked here (type, name, clashes, limits) and
again by tarfile's "data" filter before a byte of it is written."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from reconciler.atomic import write_atomic
from reconciler.errors import Problem, UsageError, ValidationFailed
from reconciler.packages.limits import LIMITS, Limits
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.tree import CHUNK, Tree, TreeBuilder, TreeFile, hash_stream, read_folder

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest

__all__ = ["LIMITS", "Limits", "Packed", "extract", "pack", "read_archive_manifest"]

MANIFEST = "connector.yaml"
GZIP_LEVEL = 9
FILTER_ROOT = "/package"
"""Where tarfile's "data" filter is told members land: it judges names lexically, and the
real destination is only known to `extract`."""
HEADER_ALLOWANCE = 3 * 1024
"""Decompressed bytes a member's headers may take beyond its content (ustar plus a pax header
for a long or non-ASCII name, and padding)."""


@dataclass(frozen=True)
class Packed:
    """An archive `pack` wrote: its digest and size, the files in it and its manifest."""

    digest: str
    size: int
    tree: Tree
    manifest: Manifest


def pack(src: Path, out: Path, *, limits: Limits = LIMITS) -> Packed:
    """Write the reproducible archive of connector folder `src` to `out`, atomically; an
    invalid or missing `connector.yaml` is `ValidationFailed` and nothing is written."""
    from reconciler.load.manifest import read_manifest

    if out.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"--out {out}: inside the folder being packed ({src})")
    tree = read_folder(src, limits=limits)
    by_path = {f.path: f for f in tree.files}
    where = str(src / MANIFEST)
    if MANIFEST not in by_path:
        raise ValidationFailed([Problem(where, 0, 0, "missing: a connector folder needs one")])
    manifest = read_manifest(_read_checked(src, by_path[MANIFEST]), where)
    data = _archive_bytes(src, tree)
    if len(data) > limits.max_archive_bytes:
        raise PackageRefused(
            "too-large",
            f"{src}: the archive would be {len(data):,} bytes; "
            f"the limit is {limits.max_archive_bytes:,}",
        )
    write_atomic(out, data)
    return Packed(digest=_sha256(data), size=len(data), tree=tree, manifest=manifest)


def _archive_bytes(src: Path, tree: Tree) -> bytes:
    # Everything that could vary between machines or runs is fixed: member order, times,
    # owners, modes (from the executable bit only), and the gzip header (mtime 0, no name).
    buffer = io.BytesIO()
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL, mtime=0)
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in _member_order(tree):
            tar.addfile(_member_info(file), io.BytesIO(_read_checked(src, file)))
    return buffer.getvalue()


def _member_order(tree: Tree) -> list[TreeFile]:
    """`connector.yaml` first (so a reader finds it at once), then by path bytes."""
    return sorted(tree.files, key=lambda f: (f.path != MANIFEST, f.path.encode()))


def _member_info(file: TreeFile) -> tarfile.TarInfo:
    info = tarfile.TarInfo(file.path)
    info.size = file.size
    info.mode = 0o755 if file.executable else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _read_checked(src: Path, file: TreeFile) -> bytes:
    """The bytes of `file` under `src`, which must still be what the tree recorded."""
    path = src / file.path
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(file.size + 1)
    if len(data) != file.size or _sha256(data) != "sha256:" + file.sha256:
        raise PackageRefused("tree-changed", f"{path}: changed while it was packed")
    return data


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Inflater(io.RawIOBase):
    """The decompressed bytes of exactly one gzip stream, refused past `max_out` bytes,
    truncated, corrupt, or followed by anything."""

    def __init__(self, source: BinaryIO, *, max_out: int, where: str) -> None:
        super().__init__()
        self._source = source
        self._max_out = max_out
        self._where = where
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = b""
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._next(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _next(self, wanted: int) -> bytes:
        while not self._inflate.eof:
            if self._pending:
                out = self._inflate.decompress(self._pending, wanted)
                self._pending = self._inflate.unconsumed_tail
            else:
                chunk = self._source.read(CHUNK)
                if not chunk:
                    raise PackageRefused("tampered", f"{self._where}: truncated gzip stream")
                self._pending = chunk
                continue
            if out:
                return self._count(out)
        if self._inflate.unused_data or self._pending or self._source.read(1):
            raise PackageRefused("tampered", f"{self._where}: data after the gzip stream")
        return b""

    def _count(self, out: bytes) -> bytes:
        self.produced += len(out)
        if self.produced > self._max_out:
            raise PackageRefused(
                "too-large", f"{self._where}: unpacks to more than {self._max_out:,} bytes"
            )
        return out

    def drain(self) -> None:
        """Read to the end of the stream: past the tar's end there may be only zero padding."""
        while chunk := self._next(CHUNK):
            if chunk.count(0) != len(chunk):
                raise PackageRefused("tampered", f"{self._where}: data after the archive's end")


@contextlib.contextmanager
def _members(archive: Path, builder: TreeBuilder, limits: Limits) -> Iterator[_Reader]:
    """Open `archive` for one strict pass; the reader yields members already checked."""
    where = str(archive)
    try:
        handle = open(archive, "rb")  # noqa: SIM115 - closed below, after the drain
    except OSError as exc:
        raise PackageRefused("not-found", f"{where}: {exc.strerror}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limits.max_archive_bytes:
            raise PackageRefused(
                "too-large", f"{where}: {size:,} bytes; the limit is {limits.max_archive_bytes:,}"
            )
        budget = limits.max_total_bytes + HEADER_ALLOWANCE * (limits.max_members + 4)
        inflater = _Inflater(handle, max_out=budget, where=where)
        try:
            with tarfile.open(fileobj=io.BufferedReader(inflater, CHUNK), mode="r|") as tar:
                yield _Reader(tar, builder, where)
            inflater.drain()
        except (tarfile.TarError, zlib.error, EOFError) as exc:
            raise PackageRefused("tampered", f"{where}: not a valid archive ({exc})") from None


class _Reader:
    """The members of an open archive in order, each refused unless it is a plain file with a
    safe, unique name within the limits."""

    def __init__(self, tar: tarfile.TarFile, builder: TreeBuilder, where: str) -> None:
        self.tar = tar
        self._builder = builder
        self._where = where

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        for member in self.tar:
            self._check(member)
            yield member

    def _check(self, member: tarfile.TarInfo) -> None:
        name = member.name
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise PackageRefused(
                "unsafe-entry", f"{self._where}: {name!r} is {_kind(member)}, not a regular file"
            )
        self._builder.admit(name, member.size)
        try:
            tarfile.data_filter(member, FILTER_ROOT)
        except tarfile.FilterError as exc:
            raise PackageRefused("unsafe-entry", f"{self._where}: {name!r}: {exc}") from None

    def content(self, member: tarfile.TarInfo) -> IO[bytes]:
        """The bytes of the current member."""
        stream = self.tar.extractfile(member)
        assert stream is not None  # a regular file always has content
        return stream

    def record(self, member: tarfile.TarInfo, sha256: str, size: int) -> None:
        """Add the member, read in full (`size` bytes hashing to `sha256`), to the tree."""
        if size != member.size:
            raise PackageRefused("tampered", f"{self._where}: {member.name!r} is truncated")
        executable = bool(member.mode & 0o100)
        self._builder.add(member.name, executable=executable, size=size, sha256=sha256)


def _kind(member: tarfile.TarInfo) -> str:
    kinds = {
        tarfile.SYMTYPE: "a symlink",
        tarfile.LNKTYPE: "a hard link",
        tarfile.CHRTYPE: "a character device",
        tarfile.BLKTYPE: "a block device",
        tarfile.FIFOTYPE: "a fifo",
        tarfile.DIRTYPE: "a folder entry (the format has files only)",
    }
    return kinds.get(member.type, f"an entry of type {member.type!r}")


def read_archive_manifest(archive: Path, *, limits: Limits = LIMITS) -> Manifest:
    """The `connector.yaml` of `archive`, read with size bounds; nothing is unpacked. The whole
    archive is checked as `extract` would, so the manifest read is the one it would write."""
    from reconciler.load.manifest import MAX_MANIFEST_BYTES, read_manifest

    found: bytes | None = None
    builder = TreeBuilder(limits, str(archive))
    with _members(archive, builder, limits) as reader:
        for member in reader:
            if member.name == MANIFEST and member.size <= MAX_MANIFEST_BYTES:
                found = reader.content(member).read(member.size + 1)
                reader.record(member, _sha256(found).removeprefix("sha256:"), len(found))
            else:
                sha, size = hash_stream(reader.content(member), limit=member.size)
                reader.record(member, sha, size)
    if found is None:
        raise PackageRefused(
            "invalid-manifest",
            f"{archive}: no {MANIFEST} of at most {MAX_MANIFEST_BYTES:,} bytes in the archive",
        )
    try:
        return read_manifest(found, f"{archive}:{MANIFEST}")
    except ValidationFailed as exc:
        lines = "; ".join(f"{p.location()}: {p.message}" for p in exc.problems)
        raise PackageRefused("invalid-manifest", lines) from None


def extract(archive: Path, dest: Path, *, limits: Limits = LIMITS) -> Tree:
    """Unpack `archive` into the new folder `dest` and return the Tree written; on any
    refusal (reason per specs/package-format.md) `dest` is removed and nothing remains."""
    try:
        os.mkdir(dest, 0o755)
    except FileExistsError:
        raise UsageError(f"{dest}: already exists; extract writes a new folder") from None
    except FileNotFoundError:
        raise UsageError(f"{dest}: its folder does not exist") from None
    try:
        builder = TreeBuilder(limits, str(archive))
        with _members(archive, builder, limits) as reader:
            for member in reader:
                sha, size = _write_member(reader.content(member), dest, member)
                reader.record(member, sha, size)
        return builder.tree()
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _write_member(stream: IO[bytes], dest: Path, member: tarfile.TarInfo) -> tuple[str, int]:
    """Write one checked member under `dest` (never through a link, never over a file)."""
    target = dest / member.name
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    mode = 0o755 if member.mode & 0o100 else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    hasher = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        while size <= member.size and (chunk := stream.read(CHUNK)):
            hasher.update(chunk)
            out.write(chunk)
            size += len(chunk)
    os.chmod(target, mode)  # the umask may have narrowed it
    return hasher.hexdigest(), size
