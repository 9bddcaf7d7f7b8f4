"""The forms a secret takes in output, so the redactor can mask every one (SPEC section 7;
specs/vault.md, "Redaction of vault values").

A value read from the vault rarely reaches an output as it is: a connector puts it in a JSON
document, a URL query or a Basic auth header; a log dumps it as hex. `forms(value)` is the value
and what the common encoders make of it: JSON string escapes (with and without `ensure_ascii`),
URL escapes (`quote`, `quote_plus`, JavaScript's `encodeURIComponent`; upper- and lower-case
`%xx`), hex (lower and upper) and base64 (standard and URL-safe, padded or not). Inside a longer
base64 blob the value's encoding depends on where its bytes fall in the 3-byte groups, so for each
of the three alignments the characters that hold only the value's bits (the "stable core") are a
form too: the one or two characters at each end that mix in a neighbour's bits are left out.

Forms that change the alphabet (hex, base64) are kept only when they spell at least
`MIN_ENCODED_BITS` of the value: a shorter one (the 5-character base64 core of a 4-character
value) could turn up by chance in innocent text, a digest or another blob, and masking it there
would garble that output. Escaped forms are never shorter than the value, so they are kept
whenever the value is.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

MIN_ENCODED_BITS = 60
"""A hex or base64 form is kept when it carries this many bits of the value (15 hex or 10 base64
characters): the chance that innocent random-looking text holds it is then below 2**-60 per
position. Every value the vault accepts (8 characters or more) has all its forms kept."""

_PERCENT = re.compile(r"%[0-9A-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u[0-9a-f]{4}")


def forms(value: str) -> set[str]:
    """`value` and every encoded form of it worth masking (see the module)."""
    data = value.encode("utf-8", "surrogatepass")
    found = {value, *_escaped(value)}
    found |= {text for text in _hex(data) if 4 * len(text) >= MIN_ENCODED_BITS}
    found |= {text for text in _base64(data) if 6 * len(text.rstrip("=")) >= MIN_ENCODED_BITS}
    found.discard("")
    return found


def _escaped(value: str) -> set[str]:
    """The JSON and URL escapes of `value` (each is at least as long as `value`)."""
    ascii_json = json.dumps(value)[1:-1]
    jsons = {ascii_json, json.dumps(value, ensure_ascii=False)[1:-1]}
    jsons.add(_UNICODE_ESCAPE.sub(lambda m: "\\u" + m.group()[2:].upper(), ascii_json))
    jsons |= {text.replace("/", "\\/") for text in jsons}  # PHP and some JS encoders
    urls = {
        quote(value, safe=""),
        quote(value),  # keeps "/", as for a path
        quote_plus(value),
        quote(value, safe="!'()*"),  # encodeURIComponent
    }
    urls |= {_PERCENT.sub(lambda m: m.group().lower(), text) for text in urls}
    return jsons | urls


def _hex(data: bytes) -> set[str]:
    return {data.hex(), data.hex().upper()}


def _base64(data: bytes) -> set[str]:
    """Whole encodings (padded and not) and the stable cores at the three alignments, in both
    alphabets."""
    found: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        found |= {whole, whole.rstrip("=")}
        for offset in range(3):
            # `offset` neighbour bytes before the value and enough after it: the characters
            # from the first one past the neighbour's bits to the last one before the next
            # neighbour's bits hold the value's bits only.
            encoded = encode(bytes(offset) + data + bytes(3)).decode()
            first = -(-8 * offset // 6)
            last = 8 * (offset + len(data)) // 6
            found.add(encoded[first:last])
    return found
