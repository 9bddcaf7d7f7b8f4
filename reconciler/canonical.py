"""Canonical JSON and digests: the one way Cloned turns data into bytes it hashes or signs.

Keys sorted, no whitespace, UTF-8, no NaN. Plans, changes, audit events and approvals are all
hashed through here, so a digest computed anywhere matches one computed anywhere else.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """The canonical byte form of a JSON-compatible value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def digest(value: Any) -> str:
    """`sha256:<hex>` of the canonical form of `value`."""
    return digest_of(canonical_json(value))


def digest_of(canonical: bytes) -> str:
    """`sha256:<hex>` of bytes already in canonical form (`canonical_json`'s result)."""
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def parse_json(text: str | bytes) -> Any:
    """JSON read from a file anyone may have edited (records, audit segments, the lock, plans).

    Raises ValueError, as `json.loads` does for bad syntax, also for what `json.loads` lets
    through or crashes on: NaN and Infinity (not JSON, and never written by Cloned), and
    nesting deep enough to exhaust the recursion limit (RecursionError)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
