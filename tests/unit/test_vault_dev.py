"""The dev vault provider: values round-trip and keep versions; a file tampered with, rolled
back, or from another workspace or key is refused and nothing is written; the key stays private.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest

from reconciler.canonical import canonical_json
from reconciler.model.workspace import WorkspaceSpec
from reconciler.redact import active
from reconciler.vault import dev
from reconciler.vault.dev import DevVault
from reconciler.vault.select import open_vault
from reconciler.vault.types import SecretMissing, VaultRefused

VALUE = "s3cr3t-value-one"
OTHER = "an0ther-value-two"


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "cloned-home"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    (path / ".cloned").mkdir(parents=True)
    return path


def vault(root: Path, home: Path, workspace: str = "demo") -> DevVault:
    return DevVault(root, workspace, home=home, clock=FakeClock())


def document(root: Path) -> dict:
    return json.loads((root / dev.FILE).read_text())


def rewrite(root: Path, data: dict, *, key: bytes | None = None) -> None:
    """Write `data` as the vault file; with `key`, re-sealed with a valid MAC (an attacker who
    holds the key's file MAC half, to show the values' associated data on its own)."""
    if key is not None:
        unsigned = {k: v for k, v in data.items() if k != "mac"}
        mac = dev._Keys(key).mac
        data["mac"] = hmac.new(mac, canonical_json(unsigned), sha256).hexdigest()
    (root / dev.FILE).write_bytes(canonical_json(data))


def test_set_get_keeps_versions_and_lists_metadata_only(root: Path, home: Path) -> None:
    store = vault(root, home)
    first = store.set("gh-token", VALUE)
    store._clock.sleep(60)  # type: ignore[attr-defined]
    second = store.set("gh-token", OTHER)
    store.set("api-key", VALUE)
    assert store.get("gh-token").value == OTHER
    assert store.get("gh-token", first.version).value == VALUE
    assert second.version != first.version and len(second.version or "") == 32
    assert [i.name for i in store.names()] == ["api-key", "gh-token"]
    assert store.exists("gh-token") == second
    assert second.updated == "2026-03-01T12:01:00Z"
    assert store.exists("nope") is None
    assert VALUE not in (root / dev.FILE).read_text()
    assert VALUE not in repr(store.get("gh-token", first.version))
    with pytest.raises(SecretMissing):
        store.get("nope")
    with pytest.raises(SecretMissing):
        store.get("gh-token", "0" * 32)


def test_get_registers_the_value_with_the_redactor(root: Path, home: Path) -> None:
    vault(root, home).set("gh-token", VALUE)
    vault(root, home).get("gh-token")
    assert VALUE not in active().text(f"token={VALUE}")


def test_delete_removes_every_version(root: Path, home: Path) -> None:
    store = vault(root, home)
    store.set("gh-token", VALUE)
    store.set("gh-token", OTHER)
    store.delete("gh-token")
    assert store.names() == []
    assert "gh-token" not in (root / dev.FILE).read_text()
    with pytest.raises(SecretMissing):
        store.delete("gh-token")


def test_files_are_private_and_the_key_is_not_in_the_repository(root: Path, home: Path) -> None:
    vault(root, home).set("gh-token", VALUE)
    key = home / "vault" / "dev" / "demo.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / dev.FILE).stat().st_mode) == 0o600
    in_repo = [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    assert not any(key.read_bytes() in data for data in in_repo)
    status = vault(root, home).status()
    assert status.dev_only and status.reachable and status.secrets == 1
    assert "DEV ONLY" in status.line()


def test_a_key_others_can_read_is_refused_with_the_chmod_to_run(root: Path, home: Path) -> None:
    vault(root, home).set("gh-token", VALUE)
    key = home / "vault" / "dev" / "demo.key"
    key.chmod(0o644)
    with pytest.raises(VaultRefused, match="readable by others") as caught:
        vault(root, home).get("gh-token")
    assert caught.value.hint == f"run `chmod 600 {key}`"
    status = vault(root, home).status()
    assert not status.reachable and "readable by others" in status.detail


def unchanged(root: Path, home: Path) -> tuple[bytes, bytes]:
    seen = home / "vault" / "dev" / "demo.seen.json"
    return (root / dev.FILE).read_bytes(), seen.read_bytes()


def test_a_flipped_ciphertext_byte_is_refused_and_nothing_is_written(
    root: Path, home: Path
) -> None:
    vault(root, home).set("gh-token", VALUE)
    data = document(root)
    sealed = bytearray(data["secrets"]["gh-token"][0]["ciphertext"].encode())
    sealed[3] = ord("A") if sealed[3] != ord("A") else ord("B")
    data["secrets"]["gh-token"][0]["ciphertext"] = sealed.decode()
    rewrite(root, data)
    before = unchanged(root, home)
    for attempt in (
        lambda: vault(root, home).get("gh-token"),
        lambda: vault(root, home).set("other", OTHER),
        lambda: vault(root, home).delete("gh-token"),
        lambda: vault(root, home).names(),
    ):
        with pytest.raises(VaultRefused, match=f"{root / dev.FILE}.*MAC does not match"):
            attempt()
    assert unchanged(root, home) == before
    assert not vault(root, home).status().reachable


def test_values_are_bound_to_their_name_and_version(root: Path, home: Path) -> None:
    store = vault(root, home)
    store.set("a-token", VALUE)
    store.set("b-token", OTHER)
    store.set("b-token", VALUE + "x")
    key = (home / "vault" / "dev" / "demo.key").read_bytes()
    data = document(root)
    a, b = data["secrets"]["a-token"][0], data["secrets"]["b-token"][0]
    a["ciphertext"], b["ciphertext"] = b["ciphertext"], a["ciphertext"]
    a["nonce"], b["nonce"] = b["nonce"], a["nonce"]
    swapped = json.loads(json.dumps(data))
    rewrite(root, data)
    with pytest.raises(VaultRefused, match="MAC does not match"):
        vault(root, home).get("a-token")
    rewrite(root, swapped, key=key)  # even with a valid file MAC, the values do not open
    with pytest.raises(VaultRefused, match=r"'a-token' version .* does not decrypt"):
        vault(root, home).get("a-token")
    older, newer = document(root)["secrets"]["b-token"]
    newer["nonce"], newer["ciphertext"] = older["nonce"], older["ciphertext"]
    data = document(root)
    data["secrets"]["b-token"] = [older, newer]
    rewrite(root, data, key=key)
    with pytest.raises(VaultRefused, match=r"'b-token' version .* does not decrypt"):
        vault(root, home).get("b-token")


def test_a_removed_entry_is_refused(root: Path, home: Path) -> None:
    vault(root, home).set("a-token", VALUE)
    vault(root, home).set("b-token", OTHER)
    data = document(root)
    del data["secrets"]["a-token"]
    rewrite(root, data)
    with pytest.raises(VaultRefused, match="MAC does not match"):
        vault(root, home).names()


def test_an_older_copy_of_the_file_is_refused(root: Path, home: Path) -> None:
    store = vault(root, home)
    store.set("gh-token", VALUE)
    old = (root / dev.FILE).read_bytes()
    store.set("gh-token", OTHER)
    (root / dev.FILE).write_bytes(old)
    with pytest.raises(VaultRefused, match="generation 1, older than generation 2"):
        vault(root, home).get("gh-token")


def test_a_removed_file_starts_again_above_the_last_generation(root: Path, home: Path) -> None:
    vault(root, home).set("gh-token", VALUE)
    old = (root / dev.FILE).read_bytes()
    (root / dev.FILE).unlink()
    vault(root, home).set("gh-token", OTHER)
    assert document(root)["generation"] == 2
    (root / dev.FILE).write_bytes(old)
    with pytest.raises(VaultRefused, match="older"):
        vault(root, home).get("gh-token")


def test_a_file_from_another_workspace_or_key_is_refused(
    root: Path, home: Path, tmp_path: Path
) -> None:
    vault(root, home).set("gh-token", VALUE)
    other = tmp_path / "other"
    (other / dev.FILE).parent.mkdir(parents=True)
    shutil.copy(root / dev.FILE, other / dev.FILE)
    with pytest.raises(VaultRefused, match="belongs to workspace 'demo', not 'prod'"):
        vault(other, home, "prod").get("gh-token")
    data = document(other)
    data["workspace"] = "prod"
    rewrite(other, data)
    vault(tmp_path / "third", home, "prod").set("x-token", OTHER)  # prod has a key now
    with pytest.raises(VaultRefused, match="sealed with another key"):
        vault(other, home, "prod").get("gh-token")
    elsewhere = tmp_path / "another-home"
    with pytest.raises(VaultRefused, match=r"its key .* is missing"):
        vault(root, elsewhere).get("gh-token")
    vault(tmp_path / "fourth", elsewhere).set("y-token", OTHER)
    with pytest.raises(VaultRefused, match=f"{root / dev.FILE} was sealed with another key"):
        vault(root, elsewhere).set("gh-token", OTHER)
    assert not (elsewhere / "vault" / "dev" / "demo.seen.json").read_text().count(str(root))


def test_a_file_that_is_not_a_dev_vault_is_refused(root: Path, home: Path) -> None:
    (root / dev.FILE).parent.mkdir(parents=True)
    (root / dev.FILE).write_text("{not json")
    with pytest.raises(VaultRefused, match="not JSON"):
        vault(root, home).names()
    (root / dev.FILE).write_text('{"format": "something-else"}')
    with pytest.raises(VaultRefused, match="not a cloned-dev-vault/v1 file"):
        vault(root, home).set("gh-token", VALUE)
    assert not (home / "vault" / "dev" / "demo.key").exists()


def test_set_checks_name_and_value_before_writing(root: Path, home: Path) -> None:
    with pytest.raises(VaultRefused, match="not a secret name"):
        vault(root, home).set("Bad_Name", VALUE)
    with pytest.raises(VaultRefused, match="at least 8"):
        vault(root, home).set("gh-token", "short")
    assert not (root / ".cloned" / "state").exists() and not home.exists()


def spec(**fields: object) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(fields)


def test_open_vault_chooses_dev_and_refuses_none_strict_and_enterprise(
    root: Path, home: Path
) -> None:
    chosen = open_vault(root, "demo", spec(vault={"provider": "dev"}), home=home)
    assert isinstance(chosen, DevVault) and chosen.provider == "dev"
    with pytest.raises(VaultRefused, match="has no vault") as none:
        open_vault(root, "demo", spec(), home=home)
    assert "spec.vault.provider" in (none.value.hint or "")
    strict = spec(vault={"provider": "dev"}, policyPacks=["baseline", "strict"])
    with pytest.raises(VaultRefused, match="refused under the 'strict' policy pack"):
        open_vault(root, "demo", strict, home=home)
    enterprise = spec(vault={"provider": "dev"}, tier="enterprise")
    with pytest.raises(VaultRefused, match="refused under tier 'enterprise'"):
        open_vault(root, "demo", enterprise, home=home)
    assert not os.listdir(root / ".cloned")
