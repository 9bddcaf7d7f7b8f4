"""Connector archives: reproducible packing, and every refusal on archives crafted by hand."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from reconciler.errors import UsageError, ValidationFailed
from reconciler.packages.archive import Limits, extract, pack, read_archive_manifest
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.tree import read_folder

MANIFEST = b"name: notes\nversion: 0.1.0\npublisher: cloned\nrun: {command: [python, server.py]}\n"


def connector(folder: Path) -> Path:
    (folder / "lib").mkdir(parents=True)
    (folder / "connector.yaml").write_bytes(MANIFEST)
    (folder / "server.py").write_text("print('hello')\n")
    (folder / "server.py").chmod(0o755)
    (folder / "lib" / "util.py").write_text("X = 1\n")
    return folder


def member(name: str, data: bytes = b"x", **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def craft(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], *, tail: bytes = b"") -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            has_data = info.type in (tarfile.REGTYPE, tarfile.AREGTYPE)
            tar.addfile(info, io.BytesIO(data) if has_data else None)
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0) + tail)
    return path


def refused(archive: Path, dest: Path, reason: str, **limits: int) -> str:
    with pytest.raises(PackageRefused) as caught:
        extract(archive, dest, limits=Limits(**limits))
    assert caught.value.reason == reason, caught.value
    assert not dest.exists(), "a refused extract leaves nothing behind"
    return str(caught.value)


def test_pack_is_byte_identical_whatever_the_times_owners_and_umask(tmp_path: Path) -> None:
    first = pack(connector(tmp_path / "a"), tmp_path / "one.tar.gz")
    second_src = connector(tmp_path / "b")
    os.utime(second_src / "server.py", (1_000_000, 1_000_000))
    (second_src / "lib" / "util.py").chmod(0o600)
    second = pack(second_src, tmp_path / "two.tar.gz")
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    assert first.digest == second.digest and first.size == (tmp_path / "one.tar.gz").stat().st_size
    assert first.manifest.name == "notes" and len(first.tree.files) == 3


def test_pack_fixes_every_header_field(tmp_path: Path) -> None:
    pack(connector(tmp_path / "c"), tmp_path / "c.tar.gz")
    data = (tmp_path / "c.tar.gz").read_bytes()
    assert data[4:8] == b"\0\0\0\0", "gzip mtime 0"
    assert data[3] & 0x08 == 0, "no file name in the gzip header"
    with tarfile.open(tmp_path / "c.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["connector.yaml", "lib/util.py", "server.py"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members}["server.py"] == 0o755
    assert {m.name: m.mode for m in members}["lib/util.py"] == 0o644


def test_extract_round_trips_the_tree_and_modes(tmp_path: Path) -> None:
    packed = pack(connector(tmp_path / "c"), tmp_path / "c.tar.gz")
    tree = extract(tmp_path / "c.tar.gz", tmp_path / "out")
    assert tree == packed.tree == read_folder(tmp_path / "out")
    assert (tmp_path / "out" / "server.py").stat().st_mode & 0o777 == 0o755
    assert read_archive_manifest(tmp_path / "c.tar.gz").publisher == "cloned"


def test_pack_refuses_an_invalid_manifest_with_its_position_and_writes_nothing(
    tmp_path: Path,
) -> None:
    src = connector(tmp_path / "c")
    (src / "connector.yaml").write_text("name: notes\nversion: one\n")
    with pytest.raises(ValidationFailed) as caught:
        pack(src, tmp_path / "out.tar.gz")
    assert any(p.line == 2 and "connector.yaml" in p.path for p in caught.value.problems)
    assert not (tmp_path / "out.tar.gz").exists()


def test_pack_refuses_a_folder_without_manifest_a_symlink_and_output_inside(
    tmp_path: Path,
) -> None:
    src = connector(tmp_path / "c")
    with pytest.raises(UsageError):
        pack(src, src / "self.tar.gz")
    (src / "connector.yaml").unlink()
    with pytest.raises(ValidationFailed):
        pack(src, tmp_path / "out.tar.gz")
    (src / "connector.yaml").write_bytes(MANIFEST)
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(PackageRefused) as caught:
        pack(src, tmp_path / "out.tar.gz")
    assert caught.value.reason == "unsafe-entry" and "link" in str(caught.value)
    assert not (tmp_path / "out.tar.gz").exists()


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("../x", {}),
        ("/abs", {}),
        ("a/../../x", {}),
        ("./a", {}),
        ("a//b", {}),
        ("a\\b", {}),
        ("__pycache__/m.cpython-311.pyc", {}),
        ("link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("hard", {"type": tarfile.LNKTYPE, "linkname": "connector.yaml"}),
        ("tty", {"type": tarfile.CHRTYPE, "devmajor": 5, "devminor": 0}),
        ("pipe", {"type": tarfile.FIFOTYPE}),
        ("dir", {"type": tarfile.DIRTYPE}),
    ],
)
def test_extract_refuses_unsafe_members(
    tmp_path: Path, name: str, fields: dict[str, object]
) -> None:
    archive = craft(
        tmp_path / "a.tar.gz", [member("connector.yaml", MANIFEST), member(name, b"x", **fields)]
    )
    message = refused(archive, tmp_path / "out", "unsafe-entry")
    assert repr(name) in message
    with pytest.raises(PackageRefused):
        read_archive_manifest(archive)
    assert not (tmp_path.parent / "x").exists() and not Path("/abs").exists()


@pytest.mark.parametrize(
    ("first", "second"), [("a", "a"), ("a", "A"), ("é", "e\u0301"), ("a", "a/b")]
)
def test_extract_refuses_names_that_land_on_one_file(
    tmp_path: Path, first: str, second: str
) -> None:
    archive = craft(tmp_path / "a.tar.gz", [member(first, b"1"), member(second, b"2")])
    refused(archive, tmp_path / "out", "unsafe-entry")


def test_extract_refuses_too_many_members(tmp_path: Path) -> None:
    archive = craft(tmp_path / "a.tar.gz", [member(f"f{i}") for i in range(6)])
    assert "more than 5 files" in refused(archive, tmp_path / "out", "too-large", max_members=5)


def test_extract_refuses_a_member_over_the_size_limit(tmp_path: Path) -> None:
    archive = craft(tmp_path / "a.tar.gz", [member("big", b"x" * 2048)])
    refused(archive, tmp_path / "out", "too-large", max_member_bytes=1024)


def test_extract_refuses_a_bomb_counting_decompressed_bytes(tmp_path: Path) -> None:
    # 300 MB of zeros compresses to about 300 kB; the limit stops it after 2 MB.
    archive = tmp_path / "bomb.tar.gz"
    zeros = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = tarfile.TarInfo("bomb")
    header.size = 300 * len(zeros)
    with archive.open("wb") as out:
        out.write(compressor.compress(header.tobuf(tarfile.PAX_FORMAT)))
        for _ in range(300):
            out.write(compressor.compress(zeros))
        out.write(compressor.flush())
    limits = {"max_total_bytes": 2 * 1024 * 1024, "max_member_bytes": 512 * 1024 * 1024}
    refused(archive, tmp_path / "out", "too-large", **limits)


def test_extract_refuses_a_header_that_claims_more_than_the_stream_holds(tmp_path: Path) -> None:
    # A complete gzip stream whose tar header promises 1,000 bytes and delivers 10.
    header = tarfile.TarInfo("short")
    header.size = 1000
    raw = header.tobuf(tarfile.PAX_FORMAT) + b"x" * 10
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(raw, mtime=0))
    refused(tmp_path / "a.tar.gz", tmp_path / "out", "tampered")


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "trailing", "plain-tar", "empty"])
def test_extract_refuses_damaged_input_as_tampered(tmp_path: Path, damage: str) -> None:
    pack(connector(tmp_path / "c"), tmp_path / "c.tar.gz")
    data = (tmp_path / "c.tar.gz").read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "corrupt": data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:],
        "trailing": data + b"garbage",
        "plain-tar": gzip.decompress(data),
        "empty": b"",
    }[damage]
    (tmp_path / "bad.tar.gz").write_bytes(damaged)
    refused(tmp_path / "bad.tar.gz", tmp_path / "out", "tampered")


def test_extract_refuses_an_archive_over_the_archive_limit(tmp_path: Path) -> None:
    pack(connector(tmp_path / "c"), tmp_path / "c.tar.gz")
    refused(tmp_path / "c.tar.gz", tmp_path / "out", "too-large", max_archive_bytes=64)


def test_extract_needs_a_new_folder(tmp_path: Path) -> None:
    pack(connector(tmp_path / "c"), tmp_path / "c.tar.gz")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    with pytest.raises(UsageError):
        extract(tmp_path / "c.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "keep").read_text() == "mine"


def test_read_archive_manifest_refuses_an_archive_without_one(tmp_path: Path) -> None:
    archive = craft(tmp_path / "a.tar.gz", [member("server.py", b"print()")])
    with pytest.raises(PackageRefused) as caught:
        read_archive_manifest(archive)
    assert caught.value.reason == "invalid-manifest"
    bad = craft(tmp_path / "b.tar.gz", [member("connector.yaml", b"name: [\n")])
    with pytest.raises(PackageRefused) as caught:
        read_archive_manifest(bad)
    assert caught.value.reason == "invalid-manifest" and "connector.yaml:" in str(caught.value)
