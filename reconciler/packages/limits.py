"""How big a connector package may be: the bounds every reader of a folder, a commit or an
archive enforces before it trusts a byte (`tree.py`, `archive.py`). Re-exported by
`archive.py`, where callers find it."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on a package; past any of them the package is refused as "too-large"."""

    max_members: int = 10_000
    """Files in the package."""
    max_total_bytes: int = 256 * MIB
    """Sum of the files' sizes, counted as they are read or decompressed."""
    max_member_bytes: int = 64 * MIB
    """One file's size."""
    max_archive_bytes: int = 64 * MIB
    """The compressed archive's size."""


LIMITS = Limits()
