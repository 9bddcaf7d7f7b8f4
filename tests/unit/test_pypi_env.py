"""Real locks and installs from the local wheelhouse: mcp-server-time in its own venv, a
wrong hash refused with nothing left behind, an incomplete lock refused, and an environment
without its completion marker never used."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from reconciler.errors import ClonedError
from reconciler.packages.pypi import Env, LockFile, Pin, build_env, lock, open_env, verify_env
from reconciler.packages.pypi.env import MARKER
from reconciler.packages.pypi.lockfile import make_lock
from reconciler.packages.refusal import PackageRefused
from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION, pip_settings, wheel


@pytest.fixture(scope="module")
def pip_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """pip pointed at the wheelhouse for every test of this module."""
    with mock.patch.dict("os.environ", pip_settings(tmp_path_factory.mktemp("pip"))):
        yield


@pytest.fixture(scope="module")
def time_lock(pip_env: None) -> LockFile:
    return lock(package=TIME_PACKAGE, version=TIME_VERSION)


@pytest.fixture(scope="module")
def time_env(time_lock: LockFile, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """The one full install of this module (about 3 s)."""
    return build_env(time_lock, tmp_path_factory.mktemp("envs") / "time")


def pin_of(prefix: str, name: str, version: str) -> Pin:
    return Pin(name, version, (hashlib.sha256(wheel(prefix).read_bytes()).hexdigest(),))


def test_the_lock_pins_the_whole_closure_by_the_wheels_sha256(time_lock: LockFile) -> None:
    names = {pin.name: pin.version for pin in time_lock.pins}
    assert names[TIME_PACKAGE] == TIME_VERSION
    assert names["mcp"].startswith("2.")
    assert {"pydantic", "anyio", "tzdata"} <= names.keys()
    # The closure of mcp-server-time, and nothing else the wheelhouse holds (mcp-server-git's).
    shipped = {
        hashlib.sha256(path.read_bytes()).hexdigest() for path in wheel("mcp").parent.glob("*.whl")
    }
    assert all(set(pin.hashes) <= shipped for pin in time_lock.pins)
    assert "gitpython" not in names and "mcp-server-git" not in names
    assert time_lock.get("idna") == pin_of("idna", "idna", names["idna"])
    lines = time_lock.text().splitlines()
    assert lines[0].startswith(f"# Hash lock of {TIME_PACKAGE}=={TIME_VERSION}")
    assert "For Python cpython 3." in lines[1]
    assert [line.split("==")[0] for line in lines[3:]] == sorted(names)


def test_the_connector_installs_into_its_own_env_and_its_entry_point_runs(time_env: Env) -> None:
    script = time_env.entry("mcp-server-time")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: mcp-server-time" in proc.stdout
    assert time_env.python.is_file()
    assert open_env(time_env.path) == time_env
    assert verify_env(time_env.path) == []
    assert verify_env(time_env.path, files_digest=time_env.files_digest) == []


def test_the_same_lock_again_reuses_the_completed_env(time_env: Env, time_lock: LockFile) -> None:
    marker = (time_env.path / MARKER).stat().st_mtime_ns
    reused = build_env(time_lock, time_env.path, trusted={time_env.files_digest})
    assert reused == time_env
    assert (time_env.path / MARKER).stat().st_mtime_ns == marker


def test_a_changed_added_or_removed_file_is_reported(time_env: Env) -> None:
    module = next((time_env.path / "lib").glob("python3*/site-packages/mcp_server_time/server.py"))
    original = module.read_bytes()
    extra = module.parent / "injected.py"
    try:
        module.write_bytes(original + b"\nimport os\n")
        extra.write_text("print('hi')\n")
        differences = verify_env(time_env.path)
        rel = module.relative_to(time_env.path).as_posix()
        assert f"changed: {rel}" in differences
        assert f"added: {extra.relative_to(time_env.path).as_posix()}" in differences
    finally:
        module.write_bytes(original)
        extra.unlink()
    assert verify_env(time_env.path) == []
    assert verify_env(time_env.path, files_digest="sha256:" + "0" * 64) == [
        f"{time_env.path}/{MARKER}: not the files digest recorded at install"
    ]


def test_a_missing_console_script_is_a_clear_refusal(time_env: Env) -> None:
    with pytest.raises(PackageRefused, match="no console script 'mcp-server-git'") as caught:
        time_env.entry("mcp-server-git")
    assert caught.value.reason == "not-found"
    assert "mcp-server-time" in caught.value.message


def test_a_wrong_hash_is_refused_naming_the_wheel_and_nothing_is_left(
    pip_env: None, tmp_path: Path
) -> None:
    good = pin_of("annotated_types", "annotated-types", "0.8.0")
    idna = pin_of("idna", "idna", wheel("idna").name.split("-")[1])
    bad = Pin(idna.name, idna.version, ("0" * 64,))
    target = tmp_path / "envs" / "bad"
    with pytest.raises(PackageRefused) as caught:
        build_env(make_lock([good, bad], ()), target)
    assert caught.value.reason == "hash-mismatch"
    assert f"idna=={idna.version} (lock sha256 0000000000000000..." in caught.value.message
    assert "annotated-types" not in caught.value.message
    assert not target.exists()


def test_a_lock_missing_a_dependency_is_refused(pip_env: None, tmp_path: Path) -> None:
    only_top = pin_of("mcp_server_time", TIME_PACKAGE, TIME_VERSION)
    target = tmp_path / "partial"
    with pytest.raises(PackageRefused, match="not a complete closure") as caught:
        build_env(make_lock([only_top], ()), target)
    assert caught.value.reason == "invalid-manifest"
    assert "mcp" in caught.value.message
    assert not target.exists()


def test_an_env_without_its_marker_is_never_used_and_is_rebuilt(
    pip_env: None, tmp_path: Path
) -> None:
    small = make_lock([pin_of("annotated_types", "annotated-types", "0.8.0")], ())
    target = tmp_path / "small"
    built = build_env(small, target)
    # As if the process was killed after pip ran but before the marker was written.
    (target / MARKER).unlink()
    (target / "half-written.tmp").write_text("left by a crash")
    assert open_env(target) is None
    assert verify_env(target) == [
        f"{target}: not a completed environment (no valid {MARKER}): rebuild it"
    ]
    rebuilt = build_env(small, target)
    assert rebuilt.lock_digest == built.lock_digest == small.digest
    assert not (target / "half-written.tmp").exists()
    assert verify_env(target) == []
    # A marker whose file list was edited (to hide a change) does not count either.
    (target / MARKER).write_text(
        (target / MARKER).read_text().replace('"files":{', '"files":{"x":"y",')
    )
    assert open_env(target) is None


def test_locking_a_version_the_index_does_not_have_is_not_found(pip_env: None) -> None:
    with pytest.raises(PackageRefused) as caught:
        lock(package=TIME_PACKAGE, version="1999.1.1")
    assert caught.value.reason == "not-found"
    assert f"{TIME_PACKAGE}==1999.1.1" in caught.value.message


def test_pip_settings_that_send_the_install_elsewhere_leave_no_env(
    pip_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_TARGET", str(tmp_path / "elsewhere"))
    small = make_lock([pin_of("annotated_types", "annotated-types", "0.8.0")], ())
    with pytest.raises(ClonedError, match="pip did not install exactly the lock") as caught:
        build_env(small, tmp_path / "env")
    assert "missing: annotated-types==0.8.0" in caught.value.message
    assert not (tmp_path / "env").exists()


def test_a_target_python_that_does_not_exist_is_a_clear_error(
    pip_env: None, tmp_path: Path
) -> None:
    with pytest.raises(ClonedError) as caught:
        lock(package=TIME_PACKAGE, version=TIME_VERSION, python=tmp_path / "no-python")
    assert caught.value.message.startswith(f"locking {TIME_PACKAGE}=={TIME_VERSION}: pip failed")
    assert "no-python" in caught.value.message
