"""DSSE envelopes (github.com/secure-systems-lab/dsse, protocol v1) signed with the audit key.

The signature covers the pre-authentication encoding PAE(type, payload) =
`"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload`, lengths in ASCII decimal bytes,
never the payload alone: a checkpoint's canonical JSON, which the same key signs, can never
read as a PAE, so neither can be passed off as the other. The envelope is one canonical JSON
line `{"payload": BASE64, "payloadType": TYPE, "signatures": [{"keyid", "sig"}]}`; keyid is the
key's `SHA256:...` fingerprint as the audit log names it. Signing and checking reuse the audit
key's code (`reconciler.audit.signing`, `reconciler.keys`); no crypto library is imported here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from reconciler.audit.signing import Signer, fingerprint, signature_valid
from reconciler.canonical import canonical_json, parse_json

PAYLOAD_TYPE = "application/vnd.in-toto+json"
FIELDS = ("payload", "payloadType", "signatures")


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of `payload` of type `payload_type`."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class DsseSignature:
    """One signature of an envelope: who claims to have signed (keyid) and the raw base64."""

    keyid: str
    sig: str


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope: the payload's bytes, its type and its signatures."""

    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...]

    def line(self) -> bytes:
        """The envelope as one canonical JSON line (with its newline)."""
        return canonical_json(self.to_json()) + b"\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": s.sig} for s in self.signatures],
        }


def sign(payload: bytes, signer: Signer, payload_type: str = PAYLOAD_TYPE) -> Envelope:
    """`payload` in an envelope with one Ed25519 signature by `signer` over its PAE."""
    raw = signer.sign(pae(payload_type, payload))
    signature = DsseSignature(fingerprint(signer.public_key), base64.b64encode(raw).decode())
    return Envelope(payload, payload_type, (signature,))


def parse(text: bytes) -> Envelope:
    """An envelope read from its file: exactly one JSON line with the DSSE fields (ValueError
    saying what is wrong otherwise)."""
    lines = text.splitlines()
    if len(lines) != 1:
        raise ValueError(f"holds {len(lines)} lines, not one envelope line")
    value = parse_json(lines[0])
    if not isinstance(value, dict) or sorted(value) != list(FIELDS):
        raise ValueError(f"not a DSSE envelope (the fields are {', '.join(FIELDS)})")
    if not isinstance(value["payload"], str) or not isinstance(value["payloadType"], str):
        raise ValueError("not a DSSE envelope (payload and payloadType are strings)")
    try:
        payload = base64.b64decode(value["payload"], validate=True)
    except binascii.Error:
        raise ValueError("the payload is not base64") from None
    return Envelope(payload, value["payloadType"], _signatures(value["signatures"]))


def _signatures(value: object) -> tuple[DsseSignature, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("not a DSSE envelope (signatures is a non-empty list)")
    found = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("sig"), str):
            raise ValueError("not a DSSE envelope (each signature has a sig string)")
        keyid = item.get("keyid", "")
        found.append(DsseSignature(keyid if isinstance(keyid, str) else "", item["sig"]))
    return tuple(found)


def signed_by(envelope: Envelope, public_line: str) -> bool:
    """Whether some signature of `envelope` is `public_line`'s over its PAE."""
    message = pae(envelope.payload_type, envelope.payload)
    return any(signature_valid(public_line, message, s.sig) for s in envelope.signatures)
