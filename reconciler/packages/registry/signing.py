"""The OpenSSH Ed25519 keys approvers use, as TUF signers and public keys.

A `--key` option names a key in `$CLONED_HOME/keys` or a path (`reconciler.keys`); this module
loads it with `cryptography` and hands securesystemslib a `CryptoSigner`, whose key id TUF
computes from the public key, so the same key file always means the same TUF key."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from reconciler.errors import ClonedError
from reconciler.keys import check_private_permissions, resolve_private_key_path

KeySigner = CryptoSigner
"""What `load_signer` returns, named for modules that may not import securesystemslib."""


def load_signer(spec: str, *, option: str = "--key") -> CryptoSigner:
    """The Ed25519 private key `spec` names (NAME or path) as a TUF signer."""
    path = resolve_private_key_path(spec)
    check_private_permissions(path)
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ClonedError(
            f"{option}: {path} is not an unencrypted OpenSSH private key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ClonedError(f"{option}: {path} is not an ed25519 key; registries sign with ed25519")
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def keyid(signer: CryptoSigner) -> str:
    """The TUF key id of `signer`'s public key."""
    return signer.public_key.keyid
