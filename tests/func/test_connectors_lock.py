"""`cloned connectors lock NAME`: the hash lock of a pypi Connector, resolved by pip from the
local wheelhouse and written where `source.pypi.lock` says; every mistake exits 1 and writes
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.packages.pypi import read_lock
from tests.conftest import cloned, write
from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION, pip_settings


def connector(name: str, source: str, version: str = TIME_VERSION) -> str:
    return f"""\
apiVersion: cloned/v1
kind: Connector
metadata:
  name: {name}
spec:
  source: {source}
  version: {version}
  publisher: modelcontextprotocol
"""


@pytest.fixture
def pip(tmp_path: Path) -> dict[str, str]:
    return pip_settings(tmp_path / "pip")


def with_time(workspace: Path, lock: str = "locks/time.txt", version: str = TIME_VERSION) -> Path:
    source = f"{{pypi: {{package: {TIME_PACKAGE}, lock: {lock}}}}}"
    write(workspace, ".cloned/connectors.yaml", connector("time", source, version))
    return workspace


def test_lock_writes_the_hash_lock_the_source_names(workspace: Path, pip: dict[str, str]) -> None:
    with_time(workspace)
    result = cloned("connectors", "lock", "time", cwd=workspace, env=pip)
    assert result.code == 0, result.err
    assert result.out.startswith(f"Locked time: {TIME_PACKAGE}=={TIME_VERSION} and ")
    assert result.out.rstrip().endswith("more in .cloned/locks/time.txt")
    text = (workspace / ".cloned/locks/time.txt").read_bytes()
    lock = read_lock(text, "time.txt", package=TIME_PACKAGE, version=TIME_VERSION)
    assert lock.get("mcp") is not None
    assert cloned("validate", cwd=workspace).code == 0

    again = cloned("connectors", "lock", "time", "--json", "--path", str(workspace), env=pip)
    assert again.code == 0, again.err
    shown = json.loads(again.out)
    assert shown["changed"] is False
    assert shown["lock_file"] == ".cloned/locks/time.txt"
    assert shown["digest"] == lock.digest
    assert {d["name"] for d in shown["distributions"]} == {p.name for p in lock.pins}


def test_an_unknown_connector_names_those_declared(workspace: Path, pip: dict[str, str]) -> None:
    with_time(workspace)
    result = cloned("connectors", "lock", "weather", cwd=workspace, env=pip)
    assert result.code == 1
    assert "no Connector named 'weather' in .cloned/ (declared: time)" in result.err


def test_a_connector_that_is_not_a_pypi_source_is_refused(
    workspace: Path, pip: dict[str, str]
) -> None:
    write(workspace, ".cloned/c.yaml", connector("notes", "{builtin: notes}", "0.6.0"))
    result = cloned("connectors", "lock", "notes", "--json", cwd=workspace, env=pip)
    assert result.code == 1
    error = json.loads(result.out)["error"]
    assert error == (
        ".cloned/c.yaml:1: Connector 'notes' has a builtin source; only pypi sources are locked"
    )


def test_a_lock_path_leaving_cloned_is_refused_and_nothing_written(
    workspace: Path, pip: dict[str, str]
) -> None:
    with_time(workspace, lock="../time.txt")
    result = cloned("connectors", "lock", "time", cwd=workspace, env=pip)
    assert result.code == 1
    assert ".cloned/connectors.yaml:1:1: source.pypi.lock '../time.txt' must be" in result.err
    assert not (workspace / "time.txt").exists()


def test_a_version_the_index_lacks_is_refused_and_nothing_written(
    workspace: Path, pip: dict[str, str]
) -> None:
    with_time(workspace, version="1999.1.1")
    result = cloned("connectors", "lock", "time", cwd=workspace, env=pip)
    assert result.code == 1
    assert f"no wheel of {TIME_PACKAGE}==1999.1.1 for this Python on the index" in result.err
    assert not (workspace / ".cloned/locks").exists()


def test_an_invalid_desired_state_is_reported_not_locked(
    workspace: Path, pip: dict[str, str]
) -> None:
    write(workspace, ".cloned/connectors.yaml", connector("time", "{pypi: {package: x}}"))
    result = cloned("connectors", "lock", "time", cwd=workspace, env=pip)
    assert result.code == 1
    assert ".cloned/connectors.yaml" in result.err and "lock" in result.err
