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
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
