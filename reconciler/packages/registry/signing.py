"""The OpenSSH Ed25519 keys approvers use, as TUF signers and public keys.

A `--key` option names a key in `$CLONED_HOME/keys` or a path (`reconciler.keys`); this module
loads it (`keys.load_private_key`) and hands securesystemslib a `CryptoSigner`, whose key id TUF
computes from the public key, so the same key file always means the same TUF key."""

from __future__ import annotations

from securesystemslib.signer import CryptoSigner, SSlibKey

from reconciler.keys import load_private_key

KeySigner = CryptoSigner
"""What `load_signer` returns, named for modules that may not import securesystemslib."""


def load_signer(spec: str, *, option: str = "--key") -> CryptoSigner:
    """The Ed25519 private key `spec` names (NAME or path) as a TUF signer: the same keys,
    loaded and checked the same way, as approvals use (`keys.load_private_key`)."""
    key = load_private_key(spec, option=option)
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def keyid(signer: CryptoSigner) -> str:
    """The TUF key id of `signer`'s public key."""
    return signer.public_key.keyid
