"""How `--key` options find a private key, and why a loose one is refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler import keys
from reconciler.errors import ClonedError


def test_key_option_accepts_a_name_or_a_path(hermetic_env: Path, tmp_path: Path) -> None:
    info = keys.generate("alice")
    assert keys.resolve_private_key_path("alice") == info.private_path
    elsewhere = tmp_path / "id_ed25519"
    elsewhere.write_bytes(info.private_path.read_bytes() if info.private_path else b"")
    assert keys.resolve_private_key_path(str(elsewhere)) == elsewhere
    with pytest.raises(ClonedError, match='--key: no key named "bob"'):
        keys.resolve_private_key_path("bob")


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("x")
    path.chmod(0o644)
    with pytest.raises(ClonedError, match=r"readable by other users \(mode 0644\)"):
        keys.check_private_permissions(path)
    path.chmod(0o600)
    keys.check_private_permissions(path)


def test_fingerprint_matches_ssh_keygen_format(hermetic_env: Path) -> None:
    info = keys.generate("carol")
    assert info.fingerprint.startswith("SHA256:")
    assert len(info.fingerprint) == len("SHA256:") + 43
    assert keys.get("carol") == info
    assert keys.get("nobody") is None


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_openssh_reads_our_keys_and_agrees_on_the_fingerprint(hermetic_env: Path) -> None:
    info = keys.generate("dave")
    assert info.private_path is not None
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(info.private_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert derived[:2] == info.public_key.split()[:2]
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(info.private_path) + ".pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed[1] == info.fingerprint
