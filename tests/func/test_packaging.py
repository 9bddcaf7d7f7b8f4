"""A plain, non-editable install carries the data folders and works without the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import QUICKSTART, REPO


@pytest.mark.slow
def test_wheel_ships_data_folders_and_validates_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        # pip (and the toolchains it probes) keep caches under HOME: give them a scratch one.
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": str(tmp_path)},
    )
    (wheel,) = dist.glob("cloned-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "reconciler/_data/schemas/budget.schema.json",
        "reconciler/_data/schemas/resource.schema.json",
        "reconciler/_data/blueprints/README.md",
        "reconciler/_data/trust/README.md",
        "reconciler/_data/connectors/README.md",
        "reconciler/_data/connectors/digests.json",
        "reconciler/_data/connectors/notes/connector.yaml",
        "reconciler/cli/main.py",
    ):
        assert expected in names, expected
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "cloned = reconciler.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    workspace = tmp_path / "ws"
    shutil.copytree(
        QUICKSTART / ".cloned", workspace / ".cloned", ignore=shutil.ignore_patterns("state")
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import reconciler.data as d, sys; print(d.data_dir('schemas')); "
            "from reconciler.cli.main import run; sys.exit(run(['validate', sys.argv[1]]))",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[0] == str(installed / "reconciler" / "_data" / "schemas")
    assert "Valid: 13 resources" in probe.stdout

    # The digest manifest generated at build time verifies the builtin as installed.
    shipped = zipfile.ZipFile(wheel).read("reconciler/_data/connectors/digests.json")
    assert shipped == (REPO / "connectors" / "digests.json").read_bytes()
    builtin = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reconciler.packages.builtin import verified; b = verified('notes'); "
            "print(b.folder); print(b.expected)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        check=False,
    )
    assert builtin.returncode == 0, builtin.stderr
    folder, expected = builtin.stdout.splitlines()
    assert folder == str(installed / "reconciler" / "_data" / "connectors" / "notes")
    assert expected in shipped.decode()
