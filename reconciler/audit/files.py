"""The committed audit files under `.cloned/audit/`: segments and signed checkpoints.

`segments/<first:08d>-<last:08d>.jsonl` holds events first..last, one canonical JSON object per
line; `checkpoints.jsonl` holds one signed checkpoint of the chain head per export. Both are
written atomically (temporary file, fsync, rename), so a crash leaves the old file or the new
one, never half of one. Formats: specs/audit.md and schemas/audit-*.schema.json.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.canonical import canonical_json
from reconciler.errors import ClonedError

AUDIT_DIR = Path(".cloned") / "audit"
SEGMENTS_DIR = AUDIT_DIR / "segments"
CHECKPOINTS_FILE = AUDIT_DIR / "checkpoints.jsonl"
SEGMENT_NAME = re.compile(r"^(\d{8,})-(\d{8,})\.jsonl$")
CHECKPOINT_FIELDS = ("hash", "key", "seq", "signature", "ts")


@dataclass(frozen=True)
class Segment:
    """One segment file: its path relative to the repository root and the range its name says."""

    rel: str
    first: int
    last: int


def segment_name(first: int, last: int) -> str:
    """`00000011-00000020.jsonl`."""
    return f"{first:08d}-{last:08d}.jsonl"


def list_segments(root: Path) -> tuple[list[Segment], list[str]]:
    """Segment files in seq order, and the other (non-hidden) names found in the folder; a
    segment whose kind cannot be told (a symlink loop, say) is an error naming it."""
    folder = root / SEGMENTS_DIR
    if not folder.is_dir():
        return [], []
    found: list[Segment] = []
    strays: list[str] = []
    for entry in os.scandir(folder):
        if entry.name.startswith("."):
            continue
        rel = (SEGMENTS_DIR / entry.name).as_posix()
        match = SEGMENT_NAME.match(entry.name)
        if match and _is_file(entry, rel):
            found.append(Segment(rel, int(match[1]), int(match[2])))
        else:
            strays.append(rel)
    found.sort(key=lambda segment: (segment.first, segment.last))
    return found, sorted(strays)


def _is_file(entry: os.DirEntry[str], rel: str) -> bool:
    try:
        return entry.is_file()
    except OSError as exc:
        raise ClonedError(
            f"{rel}: cannot be read ({exc.strerror or exc})",
            hint="a segment is a regular file; restore it from git",
        ) from None


def read_lines(path: Path) -> list[str]:
    """The lines of a JSONL file (a last line without its newline counts; UTF-8 required)."""
    text = path.read_bytes().decode()
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that event `seq` of this workspace's log has hash `hash`."""

    seq: int
    hash: str
    ts: str
    key: str
    signature: str = ""

    def signed_message(self) -> bytes:
        """The bytes the signature covers: canonical JSON of {seq, hash, ts, key}."""
        return canonical_json({"seq": self.seq, "hash": self.hash, "ts": self.ts, "key": self.key})

    def line(self) -> str:
        """The checkpoint's line in `checkpoints.jsonl`."""
        return canonical_json({**self._fields(), "signature": self.signature}).decode()

    def _fields(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "ts": self.ts, "key": self.key}
