"""Validated documents cached by the sha256 of their file's bytes.

A hit skips parsing and validation entirely (no ruamel.yaml, no pydantic imported). The cache
lives in `.cloned/state/cache/` (git-ignored) and is only written after a fully valid run. Its
fingerprint covers the Cloned version and the schemas, so an upgrade never reuses old verdicts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.data import data_dir

CACHE_FORMAT = 2  # 2: documents are stored normalised (defaults filled in)
CACHE_FILE = Path(".cloned") / "state" / "cache" / "resources.json"

CachedDocument = tuple[int, int, dict[str, Any]]
"""(document index, line, data) of one valid resource document"""


def fingerprint() -> str:
    """What a cached verdict depends on besides the file's bytes: version and schemas."""
    digest = hashlib.sha256(f"{__version__}:{CACHE_FORMAT}".encode())
    for schema in sorted(data_dir("schemas").glob("*.json")):
        digest.update(schema.name.encode())
        digest.update(schema.read_bytes())
    return digest.hexdigest()


class ResultCache:
    """Per-file verdicts keyed by content hash; `save` keeps only the entries used this run."""

    def __init__(self, root: Path, entries: dict[str, list[CachedDocument]], stamp: str) -> None:
        self._path = root / CACHE_FILE
        self._entries = entries
        self._stamp = stamp
        self._used: dict[str, list[CachedDocument]] = {}

    @classmethod
    def open(cls, root: Path) -> ResultCache:
        """The cache of the workspace at `root`; empty when missing, stale or unreadable."""
        stamp = fingerprint()
        try:
            raw = parse_json((root / CACHE_FILE).read_bytes())
            entries = raw["files"] if raw.get("fingerprint") == stamp else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entries = {}
        return cls(root, entries if isinstance(entries, dict) else {}, stamp)

    def get(self, digest: str) -> list[CachedDocument] | None:
        """The cached documents of a file with this content hash, or None."""
        hit = self._entries.get(digest)
        if hit is not None:
            self._used[digest] = hit
        return hit

    def put(self, digest: str, documents: list[CachedDocument]) -> None:
        """Remember a file's validated documents."""
        self._used[digest] = documents

    def save(self) -> None:
        """Write the entries used in this run, atomically; skipped when nothing changed.

        The cache is an optimisation: a read-only checkout or a full disk must not turn a
        successful validation into a failure, so write errors are ignored.
        """
        if self._used.keys() == self._entries.keys():
            return
        try:
            self._write()
        except OSError:
            return

    def _write(self) -> None:
        payload = {"fingerprint": self._stamp, "files": self._used}
        text = json.dumps(payload, separators=(",", ":"))
        # A cache needs no fsync: losing it in a power cut only costs one cold run.
        write_atomic(self._path, text, durable=False)
