"""`cloned keys generate|list`: OpenSSH Ed25519 keys that ssh tooling and Cloned agree on."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import cloned


def test_generate_writes_an_openssh_pair_and_prints_the_public_line(hermetic_env: Path) -> None:
    result = cloned("keys", "generate", "alice")
    assert result.code == 0, result.err
    line = result.out.strip()
    assert line.startswith("ssh-ed25519 AAAA") and line.endswith(" alice")
    private_path = hermetic_env / "keys" / "alice"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    key = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert line == f"{public.decode()} alice"
    assert (hermetic_env / "keys" / "alice.pub").read_text() == line + "\n"


def test_generate_refuses_to_overwrite_and_bad_names(hermetic_env: Path) -> None:
    assert cloned("keys", "generate", "alice").code == 0
    before = (hermetic_env / "keys" / "alice").read_bytes()
    again = cloned("keys", "generate", "alice")
    assert again.code == 1
    assert 'key "alice" already exists' in again.err
    assert (hermetic_env / "keys" / "alice").read_bytes() == before
    bad = cloned("keys", "generate", "Alice/../x")
    assert bad.code == 1
    assert 'invalid key name "Alice/../x"' in bad.err


def test_list_shows_names_and_fingerprints(hermetic_env: Path) -> None:
    assert "No keys in" in cloned("keys", "list").out
    cloned("keys", "generate", "bob")
    cloned("keys", "generate", "alice")
    (hermetic_env / "keys" / "carol.pub").write_text(
        (hermetic_env / "keys" / "bob.pub").read_text()
    )
    listing = cloned("keys", "list", "--json")
    assert listing.code == 0
    entries = json.loads(listing.out)
    assert [entry["name"] for entry in entries] == ["alice", "bob", "carol"]
    assert [entry["has_private_key"] for entry in entries] == [True, True, False]
    assert entries[1]["fingerprint"] == entries[2]["fingerprint"]
    assert all(entry["fingerprint"].startswith("SHA256:") for entry in entries)
    text = cloned("keys", "list").out
    assert "carol" in text and "(public key only)" in text


def test_bad_flag_exits_1_and_names_the_flag() -> None:
    result = cloned("keys", "list", "--jsn")
    assert result.code == 1
    assert "No such option: --jsn" in result.err
