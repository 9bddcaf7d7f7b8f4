"""Signed registries end to end: registries made with `cloned registry ...`, read by the TUF
client from a folder or a loopback server, and one test per attack, each built for real."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, TargetFile

from reconciler.packages.archive import pack
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.registry import client
from reconciler.packages.registry.repository import Expiries, load
from reconciler.packages.registry.serve import RegistryServer
from reconciler.packages.registry.signing import load_signer
from tests.conftest import cloned

KEYS = ("root", "root2", "targets", "online", "acme", "acme2", "evil", "stranger")
MANIFEST = """\
name: weather
version: {version}
publisher: acme
description: Forecasts.
run: {{command: [python, server.py]}}
tools: [get_forecast]
egress: {{hosts: [api.weather.example]}}
secrets: [{{name: weather-token, env: WEATHER_TOKEN}}]
"""
PAST = timedelta(days=-1)


@dataclass(frozen=True)
class Built:
    home: Path
    folder: Path
    pin: str

    def key(self, name: str) -> str:
        return str(self.home / "keys" / name)


def archive(tmp: Path, version: str) -> Path:
    src = tmp / f"weather-{version}"
    src.mkdir(parents=True)
    (src / "connector.yaml").write_text(MANIFEST.format(version=version))
    (src / "server.py").write_text("print('forecast')\n")
    out = tmp / f"weather-{version}.tar.gz"
    pack(src, out)
    return out


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = cloned(*args, env=env)
    assert result.code == 0, result.err
    return result.out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """acme (publishing acme/weather 1.0.0) and evil delegated, built once per module."""
    base = tmp_path_factory.mktemp("built")
    env = {"CLONED_HOME": str(base / "home")}
    for name in KEYS:
        ok("keys", "generate", name, env=env)
    b = Built(base / "home", base / "reg", "")
    top = ("--targets-key", b.key("targets"), "--online-key", b.key("online"))
    out = ok("registry", "init", str(b.folder), "--root-key", b.key("root"), *top, "--json")
    for name in ("acme", "evil"):
        ok(
            "registry",
            "delegate",
            str(b.folder),
            "--name",
            name,
            "--publisher-key",
            b.key(name),
            *top,
        )
    ok(
        "registry",
        "publish",
        str(b.folder),
        str(archive(base, "1.0.0")),
        "--key",
        b.key("acme"),
        "--online-key",
        b.key("online"),
    )
    return Built(b.home, b.folder, json.loads(out)["root_pin"])


@dataclass
class Registry:
    """A per-test copy of the built registry inside a repository folder, and a TUF cache."""

    built: Built
    repo: Path
    url: str = "file:reg"

    @property
    def folder(self) -> Path:
        return self.repo / "reg"

    def key(self, name: str) -> str:
        return self.built.key(name)

    def resolve(
        self, version: str = "1.0.0", *, pin: str | None = None, package: str = "acme/weather"
    ) -> client.TargetFacts:
        return client.resolve(
            name="acme",
            url=self.url,
            pin=pin or self.built.pin,
            package=package,
            version=version,
            cache=self.repo / "cache",
            repo_root=self.repo,
        )

    def download(self, version: str = "1.0.0") -> Path:
        """What an apply does: resolve the package, then download exactly what it pinned."""
        facts = self.resolve(version)
        _, path = client.download_pinned(
            name="acme",
            url=self.url,
            pin=self.built.pin,
            package="acme/weather",
            version=version,
            length=facts.length,
            sha256=facts.sha256,
            cache=self.repo / "cache",
            repo_root=self.repo,
            dest=self.repo / "out" / "weather.tar.gz",
            refresh=False,
        )
        assert path is not None
        return path

    def refused(self, version: str = "1.0.0", **kwargs: str) -> PackageRefused:
        with pytest.raises(PackageRefused) as caught:
            self.resolve(version, **kwargs)
        return caught.value

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        return ok("registry", *args, env=env)

    def top(self) -> tuple[str, ...]:
        return ("--targets-key", self.key("targets"), "--online-key", self.key("online"))

    def resign(self, role: str, signer: str, *, expiries: Expiries | None = None) -> None:
        """Re-sign `role` with key `signer`, then a snapshot and timestamp by the online key,
        as an attacker holding the online key (or a careless operator) would."""
        repo = load(self.folder)
        signers = {role: [load_signer(self.key(signer))], "snapshot": [self.online()]}
        repo.commit([role], signers, expiries=expiries or Expiries(), now=datetime.now(UTC))

    def online(self) -> object:
        return load_signer(self.key("online"))

    def metadata(self, name: str) -> Path:
        return self.folder / "metadata" / name

    def newest(self, role: str) -> Path:
        return self.metadata(f"{load(self.folder).versions()[role]}.{role}.json")


@pytest.fixture
def reg(built: Built, tmp_path: Path) -> Registry:
    repo = tmp_path / "repo"
    shutil.copytree(built.folder, repo / "reg")
    return Registry(built, repo)


@pytest.fixture
def served(reg: Registry) -> Iterator[Registry]:
    server = RegistryServer(reg.folder, "127.0.0.1", 0).start()
    reg.url = server.url
    try:
        yield reg
    finally:
        server.shutdown()


def edit_signed_byte(path: Path) -> None:
    """Change one character inside the signed part (the expiry's last second digit)."""
    text = path.read_text()
    at = text.index('"expires": "') + len('"expires": "2026-01-01T00:00:0')
    digit = text[at]
    path.write_text(text[:at] + ("1" if digit != "1" else "2") + text[at + 1 :])


# The registry works ------------------------------------------------------------------------


def test_a_published_package_resolves_with_what_it_declares_and_downloads(served: Registry) -> None:
    facts = served.resolve()
    assert (facts.registry, facts.target, facts.role) == (
        "acme",
        "acme/weather-1.0.0.tar.gz",
        "acme",
    )
    assert facts.declared["tools"] == ["get_forecast"]
    assert facts.declared["egress_hosts"] == ["api.weather.example"]
    assert facts.declared["secrets"] == [{"name": "weather-token", "env": "WEATHER_TOKEN"}]
    assert facts.versions == {"root": 1, "timestamp": 4, "snapshot": 4, "targets": 3, "acme": 2}
    path = served.download()
    assert path.stat().st_size == facts.length


def test_init_prints_the_root_pin_and_refuses_an_existing_registry(reg: Registry) -> None:
    assert reg.cli("root-pin", str(reg.folder)).strip() == reg.built.pin
    again = cloned("registry", "init", str(reg.folder), "--root-key", reg.key("root"), *reg.top())
    assert again.code == 1 and "already holds a registry" in again.err


def test_publish_refuses_a_key_that_is_not_the_publishers(reg: Registry, tmp_path: Path) -> None:
    result = cloned(
        "registry",
        "publish",
        str(reg.folder),
        str(archive(tmp_path, "2.0.0")),
        "--key",
        reg.key("evil"),
        "--online-key",
        reg.key("online"),
    )
    assert result.code == 1
    assert (
        "--key: key" in result.err and 'is not a key of the registry\'s "acme" role' in result.err
    )
    assert not any((reg.folder / "targets" / "acme").glob("*weather-2.0.0*"))


def test_a_new_version_and_a_fresh_timestamp_bump_versions(reg: Registry, tmp_path: Path) -> None:
    out = reg.cli(
        "publish",
        str(reg.folder),
        str(archive(tmp_path, "1.1.0")),
        "--key",
        reg.key("acme"),
        "--online-key",
        reg.key("online"),
        "--json",
    )
    assert json.loads(out)["versions"] == {
        "root": 1,
        "timestamp": 5,
        "snapshot": 5,
        "targets": 3,
        "acme": 3,
        "evil": 1,
    }
    reg.cli("timestamp", str(reg.folder), "--online-key", reg.key("online"))
    facts = reg.resolve("1.1.0")
    assert facts.versions["timestamp"] == 6 and facts.versions["acme"] == 3


def test_serve_refuses_a_host_that_is_not_loopback(reg: Registry) -> None:
    result = cloned("registry", "serve", str(reg.folder), "--host", "0.0.0.0")
    assert result.code == 1 and "loopback only" in result.err


# Attacks -----------------------------------------------------------------------------------


def test_a_tampered_package_file_is_refused(reg: Registry) -> None:
    (stored,) = (reg.folder / "targets" / "acme").glob("*.weather-1.0.0.tar.gz")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(PackageRefused) as caught:
        reg.download()
    assert caught.value.reason == "tampered"
    assert "weather-1.0.0.tar.gz" in caught.value.message
    assert not (reg.repo / "out" / "weather.tar.gz").exists()


def test_a_wrong_pin_or_an_edited_first_root_is_an_untrusted_root(reg: Registry) -> None:
    refusal = reg.refused(pin="sha256:" + "0" * 64)
    assert refusal.reason == "untrusted-root" and "1.root.json" in refusal.message
    edit_signed_byte(reg.metadata("1.root.json"))
    assert reg.refused().reason == "untrusted-root"


def test_an_edited_timestamp_has_a_bad_signature(reg: Registry) -> None:
    edit_signed_byte(reg.metadata("timestamp.json"))
    refusal = reg.refused()
    assert refusal.reason == "bad-signature"
    assert 'registry "acme", package acme/weather 1.0.0' in refusal.message
    assert "timestamp.json: " in refusal.message


@pytest.mark.parametrize("role", ["snapshot", "targets", "acme"])
def test_an_edited_snapshot_targets_or_publisher_file_is_tampered(reg: Registry, role: str) -> None:
    path = reg.newest(role)
    edit_signed_byte(path)
    refusal = reg.refused()
    assert refusal.reason == "tampered" and f"{path.name}: tampered" in refusal.message


def test_an_edited_rotated_root_has_a_bad_signature(reg: Registry) -> None:
    reg.cli(
        "rotate-root",
        str(reg.folder),
        "--root-key",
        reg.key("root"),
        "--new-root-key",
        reg.key("root2"),
    )
    edit_signed_byte(reg.metadata("2.root.json"))
    refusal = reg.refused()
    assert refusal.reason == "bad-signature" and "2.root.json: " in refusal.message


def test_publisher_metadata_signed_by_an_unknown_key_is_unsigned(reg: Registry) -> None:
    reg.resign("acme", "stranger")
    refusal = reg.refused()
    assert refusal.reason == "unsigned" and ".acme.json: " in refusal.message


@pytest.mark.parametrize("role", ["targets", "acme", "snapshot"])
def test_expired_metadata_is_refused(reg: Registry, role: str) -> None:
    expired = (
        Expiries(targets=PAST, snapshot=PAST) if role != "snapshot" else Expiries(snapshot=PAST)
    )
    repo = load(reg.folder)
    if role == "snapshot":
        repo.resign_snapshot(
            [load_signer(reg.key("online"))], expiries=expired, now=datetime.now(UTC)
        )
        repo.resign_timestamp(
            [load_signer(reg.key("online"))], expiries=Expiries(), now=datetime.now(UTC)
        )
    else:
        reg.resign(
            role, "targets" if role == "targets" else "acme", expiries=Expiries(targets=PAST)
        )
    refusal = reg.refused()
    assert refusal.reason == "expired" and role in refusal.message


def test_an_expired_root_is_refused(reg: Registry) -> None:
    from reconciler.packages.registry.publishing import rotate_root

    root = load_signer(reg.key("root"))
    rotate_root(
        reg.folder,
        current_keys=[root],
        new_keys=[root],
        threshold=1,
        expiries=Expiries(root=PAST),
        now=datetime.now(UTC),
    )
    refusal = reg.refused()
    assert refusal.reason == "expired" and "root.json is expired" in refusal.message


def test_a_stale_timestamp_is_frozen(reg: Registry) -> None:
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    reg.cli(
        "timestamp",
        str(reg.folder),
        "--online-key",
        reg.key("online"),
        env={"CLONED_NOW": two_days_ago},
    )
    refusal = reg.refused()
    assert refusal.reason == "frozen" and "timestamp.json is expired" in refusal.message


def test_an_older_timestamp_after_a_newer_one_is_a_rollback(reg: Registry) -> None:
    older = reg.metadata("timestamp.json").read_bytes()
    reg.cli("timestamp", str(reg.folder), "--online-key", reg.key("online"))
    reg.resolve()
    reg.metadata("timestamp.json").write_bytes(older)
    refusal = reg.refused()
    assert refusal.reason == "rollback" and "timestamp.json: " in refusal.message


def test_a_snapshot_with_targets_of_another_state_is_mix_and_match(reg: Registry) -> None:
    current = reg.newest("targets")
    version = int(current.name.split(".")[0])
    current.write_bytes(reg.metadata(f"{version - 1}.targets.json").read_bytes())
    refusal = reg.refused()
    assert refusal.reason == "mix-and-match" and f"{current.name}: " in refusal.message


def test_a_revoked_publisher_is_refused(reg: Registry) -> None:
    reg.cli("revoke", str(reg.folder), "--name", "acme", *reg.top())
    refusal = reg.refused()
    assert refusal.reason == "revoked" and 'revoked publisher "acme"' in refusal.message


def test_a_rotated_publisher_key_refuses_old_signatures_until_the_new_key_signs(
    reg: Registry, tmp_path: Path
) -> None:
    reg.cli("revoke", str(reg.folder), "--name", "acme", "--new-key", reg.key("acme2"), *reg.top())
    refusal = reg.refused()
    assert refusal.reason == "revoked" and ".acme.json: " in refusal.message
    newer = archive(tmp_path, "1.1.0")
    old = cloned(
        "registry",
        "publish",
        str(reg.folder),
        str(newer),
        "--key",
        reg.key("acme"),
        "--online-key",
        reg.key("online"),
    )
    assert old.code == 1 and 'is not a key of the registry\'s "acme" role' in old.err
    reg.cli(
        "publish",
        str(reg.folder),
        str(newer),
        "--key",
        reg.key("acme2"),
        "--online-key",
        reg.key("online"),
    )
    assert reg.resolve("1.1.0").role == "acme"
    assert reg.resolve("1.0.0").role == "acme"


def test_a_target_outside_the_publishers_namespace_is_refused(reg: Registry) -> None:
    repo = load(reg.folder)
    stolen = TargetFile.from_data("acme/weather-9.9.9.tar.gz", b"evil", ["sha256"])
    repo.roles["evil"].signed.targets[stolen.path] = stolen
    signers = {"evil": [load_signer(reg.key("evil"))], "snapshot": [reg.online()]}
    repo.commit(["evil"], signers, expiries=Expiries(), now=datetime.now(UTC))
    refusal = reg.refused("9.9.9")
    assert refusal.reason == "outside-namespace"
    assert 'role "evil" lists acme/weather-9.9.9.tar.gz' in refusal.message
    assert reg.refused("7.0.0").reason == "not-found"


def test_a_root_rotation_signed_by_old_and_new_keys_is_followed(served: Registry) -> None:
    served.cli(
        "rotate-root",
        str(served.folder),
        "--root-key",
        served.key("root"),
        "--new-root-key",
        served.key("root2"),
    )
    assert served.resolve().versions["root"] == 2


def test_a_root_rotation_signed_by_new_keys_only_is_refused(reg: Registry) -> None:
    repo = load(reg.folder)
    root = repo.root.signed
    root.revoke_key(root.roles["root"].keyids[0], "root")
    new = load_signer(reg.key("root2"))
    root.add_key(new.public_key, "root")
    root.version += 1
    repo.root.signatures.clear()
    repo.root.sign(new)
    repo.write(repo.root, "2.root.json")
    refusal = reg.refused()
    assert refusal.reason == "unsigned" and "2.root.json: " in refusal.message


def test_an_unreachable_server_and_a_folder_outside_the_repository(reg: Registry) -> None:
    reg.url = "http://127.0.0.1:9/"
    assert reg.refused().reason == "unreachable"
    reg.url = "file:../elsewhere"
    refusal = reg.refused()
    assert refusal.reason == "unreachable" and "inside the repository" in refusal.message


def test_metadata_is_what_the_documented_layout_says(reg: Registry) -> None:
    names = sorted(path.name for path in (reg.folder / "metadata").iterdir())
    assert "1.root.json" in names and "timestamp.json" in names and "2.acme.json" in names
    acme = Metadata.from_file(str(reg.metadata("2.acme.json")))
    info = acme.signed.targets["acme/weather-1.0.0.tar.gz"]
    assert (
        reg.folder / "targets" / "acme" / f"{info.hashes['sha256']}.weather-1.0.0.tar.gz"
    ).is_file()
    assert info.custom["cloned"]["publisher"] == "acme"


# Bad input: one clear line, exit 1, nothing written ---------------------------------------


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bad_flags_at_init_write_nothing(reg: Registry, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    base = ("registry", "init", str(fresh), "--root-key", reg.key("root"), *reg.top())
    bad_duration = cloned(*base, "--root-expires", "1y")
    assert bad_duration.code == 1 and "--root-expires '1y'" in bad_duration.err
    too_few = cloned(*base, "--threshold", "2")
    assert too_few.code == 1 and "--threshold 2" in too_few.err
    no_key = cloned("registry", "init", str(fresh), "--root-key", "nobody", *reg.top(), "--json")
    assert no_key.code == 1 and 'no key named "nobody"' in json.loads(no_key.out)["error"]
    assert not fresh.exists()


def test_a_wrong_key_or_archive_changes_nothing(reg: Registry, tmp_path: Path) -> None:
    before = files(reg.folder)
    wrong = cloned(
        "registry",
        "delegate",
        str(reg.folder),
        "--name",
        "other",
        "--publisher-key",
        reg.key("stranger"),
        "--targets-key",
        reg.key("evil"),
        "--online-key",
        reg.key("online"),
    )
    assert wrong.code == 1 and "--targets-key: key" in wrong.err
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    broken = cloned(
        "registry",
        "publish",
        str(reg.folder),
        str(junk),
        "--key",
        reg.key("acme"),
        "--online-key",
        reg.key("online"),
    )
    assert broken.code == 1 and "junk.tar.gz" in broken.err
    reserved = cloned(
        "registry",
        "delegate",
        str(reg.folder),
        "--name",
        "snapshot",
        "--publisher-key",
        reg.key("stranger"),
        *reg.top(),
    )
    assert reserved.code == 1 and '--name "snapshot"' in reserved.err
    assert files(reg.folder) == before


def test_serve_prints_its_url_serves_the_registry_and_stops_on_ctrl_c(reg: Registry) -> None:
    import signal
    import subprocess
    import urllib.request

    from tests.conftest import CLONED

    proc = subprocess.Popen(
        [str(CLONED), "registry", "serve", str(reg.folder), "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while lines[-1].strip() != "}":
            lines.append(proc.stdout.readline())
        url = json.loads("".join(lines))["url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "metadata/1.root.json", timeout=5) as response:
            assert response.read() == reg.metadata("1.root.json").read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 130


def test_a_malformed_pin_is_refused_before_anything_is_read(reg: Registry) -> None:
    refusal = reg.refused(pin="sha256:../../x")
    assert refusal.reason == "untrusted-root" and not (reg.repo / "cache").exists()


def test_revoking_one_publisher_keeps_a_key_another_still_uses(reg: Registry) -> None:
    reg.cli(
        "delegate",
        str(reg.folder),
        "--name",
        "acme-labs",
        "--publisher-key",
        reg.key("acme"),
        *reg.top(),
    )
    reg.cli("revoke", str(reg.folder), "--name", "acme-labs", *reg.top())
    assert reg.resolve().role == "acme"


def test_a_threshold_root_rotates_only_with_enough_old_keys(reg: Registry, tmp_path: Path) -> None:
    folder = reg.repo / "two"
    reg.cli(
        "init",
        str(folder),
        "--root-key",
        reg.key("root"),
        "--root-key",
        reg.key("root2"),
        "--threshold",
        "2",
        *reg.top(),
    )
    reg.cli(
        "delegate", str(folder), "--name", "acme", "--publisher-key", reg.key("acme"), *reg.top()
    )
    reg.cli(
        "publish",
        str(folder),
        str(archive(tmp_path, "1.0.0")),
        "--key",
        reg.key("acme"),
        "--online-key",
        reg.key("online"),
    )
    one = cloned(
        "registry",
        "rotate-root",
        str(folder),
        "--root-key",
        reg.key("root"),
        "--new-root-key",
        reg.key("stranger"),
    )
    assert one.code == 1 and "needs 2 distinct keys" in one.err
    reg.cli(
        "rotate-root",
        str(folder),
        "--root-key",
        reg.key("root"),
        "--root-key",
        reg.key("root2"),
        "--new-root-key",
        reg.key("stranger"),
    )
    pin = reg.cli("root-pin", str(folder)).strip()
    reg.url = "file:two"
    assert reg.resolve(pin=pin).versions["root"] == 2
