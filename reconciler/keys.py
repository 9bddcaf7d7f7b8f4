"""Ed25519 key pairs in OpenSSH format under `$CLONED_HOME/keys` (SPEC section 11).

Approvers sign change hashes with these keys; the Workspace lists their public halves. A
`--key` option accepts a NAME from the keys folder or a path to an OpenSSH ed25519 private key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ClonedError
from reconciler.home import keys_dir
from reconciler.model.names import NAME_PATTERN

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_NAME = re.compile(NAME_PATTERN)
"""A key's name is an approver's name (the model's `Name`); match it with `fullmatch`, since
`$` alone also matches before a final newline."""


@dataclass(frozen=True)
class KeyInfo:
    """A key pair known to Cloned (the private half may be missing)."""

    name: str
    public_key: str  # the one-line OpenSSH form: "ssh-ed25519 AAAA... NAME"
    fingerprint: str  # as `ssh-keygen -l` prints it: "SHA256:..."
    private_path: Path | None


def decode_canonical(text: str) -> bytes:
    """The bytes `text` spells in base64, refusing (ValueError) any spelling but the one
    `b64encode` writes: unused padding bits may not be set, so each signature and key has one
    spelling, and a respelled signature cannot pass for another record."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64 (its unused padding bits are set)")
    return raw


def canonical_base64(text: str) -> str:
    """The one spelling of the bytes `text` decodes to, or `text` itself when it is not base64."""
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode("ascii")
    except ValueError:
        return text


def fingerprint(public_line: str) -> str:
    """The SHA256 fingerprint of an OpenSSH public key line, as ssh-keygen shows it."""
    try:
        blob = decode_canonical(public_line.split()[1])
    except (IndexError, ValueError) as exc:
        raise ClonedError(f"not an OpenSSH public key line: {public_line[:40]!r}") from exc
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def generate(name: str) -> KeyInfo:
    """Create key pair NAME (private mode 0600); refuse to overwrite an existing one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not KEY_NAME.fullmatch(name):
        raise ClonedError(
            f'invalid key name "{name}": use lower-case letters, digits and dashes '
            "(at most 63, starting and ending with a letter or digit), as approver names do",
        )
    folder = keys_dir()
    private_path, public_path = folder / name, folder / f"{name}.pub"
    if private_path.exists() or public_path.exists():
        raise ClonedError(f'key "{name}" already exists in {folder}', hint="choose another name")
    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public_line = f"{public.decode()} {name}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_bytes)
    public_path.write_text(public_line + "\n")
    return KeyInfo(name, public_line, fingerprint(public_line), private_path)


def get(name: str) -> KeyInfo | None:
    """The key pair NAME from the keys folder, or None."""
    public_path = keys_dir() / f"{name}.pub"
    if not public_path.is_file():
        return None
    line = public_path.read_text().strip()
    private = keys_dir() / name
    return KeyInfo(name, line, fingerprint(line), private if private.is_file() else None)


def list_keys() -> list[KeyInfo]:
    """Every key pair in the keys folder, by name."""
    folder = keys_dir()
    if not folder.is_dir():
        return []
    found = (get(path.name.removesuffix(".pub")) for path in sorted(folder.glob("*.pub")))
    return [key for key in found if key is not None]


def resolve_private_key_path(spec: str, *, option: str = "--key") -> Path:
    """The private key file a `--key` option (or `option`) names: a key NAME, or a path."""
    if KEY_NAME.fullmatch(spec) and (keys_dir() / spec).is_file():
        return keys_dir() / spec
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    raise ClonedError(
        f'{option}: no key named "{spec}" in {keys_dir()} and no such file',
        hint="list keys with `cloned keys list`, or create one with `cloned keys generate NAME`",
    )


def check_private_permissions(path: Path, *, option: str = "--key") -> None:
    """Refuse a private key that other users can read, as ssh does."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ClonedError(
            f"{option}: {path} is readable by other users (mode {mode:04o})",
            hint=f"run `chmod 600 {path}`",
        )


@dataclass(frozen=True)
class Signer:
    """A loaded Ed25519 private key, ready to sign; `public_key` is its OpenSSH line."""

    public_key: str
    _key: object

    def sign(self, message: bytes) -> str:
        """The base64 Ed25519 signature of `message`."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        assert isinstance(self._key, Ed25519PrivateKey)
        return base64.b64encode(self._key.sign(message)).decode()


def load_private_key(spec: str, *, option: str = "--key") -> Ed25519PrivateKey:
    """The Ed25519 private key `option` names (NAME or path), checked as ssh would check it:
    what approvals, the audit log and registries sign with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = resolve_private_key_path(spec, option=option)
    check_private_permissions(path, option=option)
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ClonedError(
            f"{option}: {path} is not an unencrypted OpenSSH private key ({exc})",
            hint="Cloned reads OpenSSH ed25519 keys without a passphrase",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ClonedError(f"{option}: {path} is not an ed25519 key; Cloned signs with ed25519")
    return key


def load_signer(spec: str) -> Signer:
    """The private key a `--key` option names (NAME or path), checked as ssh would check it."""
    from cryptography.hazmat.primitives import serialization

    key = load_private_key(spec)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return Signer(public.decode(), key)


def verify(public_line: str, message: bytes, signature: str) -> bool:
    """True when `signature` (canonical base64) is `public_line`'s Ed25519 signature of
    `message`; a signature or key blob in any other spelling is refused (see decode_canonical)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        decode_canonical(public_line.split()[1])
        key = serialization.load_ssh_public_key(" ".join(public_line.split()[:2]).encode())
        raw = decode_canonical(signature)
    except (ValueError, TypeError, IndexError):
        return False
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(raw, message)
    except InvalidSignature:
        return False
    return True


def material(public_line: str) -> str:
    """The key an OpenSSH public key line holds, `TYPE BASE64`, without its comment."""
    return " ".join(public_line.split()[:2])


def same_key(a: str, b: str) -> bool:
    """True when two OpenSSH public key lines hold the same key (comments ignored)."""
    return material(a) == material(b)
