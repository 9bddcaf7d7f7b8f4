"""What the vault tests scan for: a secret value and its common encodings, computed here with
the standard library (not with the redactor's own `secretforms`, which they check)."""

from __future__ import annotations

import base64
import json
import urllib.parse


def forms(value: str) -> list[bytes]:
    """`value` raw, in base64 (standard, URL-safe, unpadded), hex (both cases), URL-encoded and
    JSON-escaped."""
    raw = value.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
        raw.hex().upper().encode(),
        urllib.parse.quote(value, safe="").encode(),
        json.dumps(value)[1:-1].encode(),
    ]
