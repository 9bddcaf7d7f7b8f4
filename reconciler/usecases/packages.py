"""Connector package use cases: `connectors pack` (a reproducible archive of a connector
folder, reconciler/packages/archive.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode, UsageError

__all__ = ["Packed", "pack"]


@dataclass(frozen=True)
class Packed:
    """The archive `pack` wrote and what is in it."""

    archive: Path
    digest: str
    size: int
    files: int
    tree_digest: str
    name: str
    version: str
    publisher: str

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "digest": self.digest,
            "size": self.size,
            "files": self.files,
            "tree_digest": self.tree_digest,
            "name": self.name,
            "version": self.version,
            "publisher": self.publisher,
        }


def pack(*, src: Path, out: Path) -> Packed:
    """Write the reproducible archive of connector folder `src` to `out`; a bad folder, an
    invalid `connector.yaml` or an unusable output path is an error and nothing is written."""
    from reconciler.packages import archive

    _check_out(out)
    packed = archive.pack(src, out)
    return Packed(
        archive=out,
        digest=packed.digest,
        size=packed.size,
        files=len(packed.tree.files),
        tree_digest=packed.tree.digest,
        name=packed.manifest.name,
        version=packed.manifest.version,
        publisher=packed.manifest.publisher,
    )


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; name the archive file to write")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
