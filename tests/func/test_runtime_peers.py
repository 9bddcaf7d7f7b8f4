"""The supervisor against a real third-party peer: `mcp-server-time` from the wheelhouse, in a
venv of its own (made once per test process), listed and called over stdio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from reconciler.redact import Redactor
from reconciler.runtime.supervisor import Supervisor
from reconciler.runtime.types import Launch, Settings
from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION, pip_settings


@pytest.fixture(scope="session")
def time_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mcp-server-time`'s console script, installed from the wheelhouse into its own venv."""
    root = tmp_path_factory.mktemp("time-peer")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {**os.environ, **pip_settings(root)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            f"{TIME_PACKAGE}=={TIME_VERSION}",
        ],
        check=True,
        env=env,
    )
    return venv / "bin" / "mcp-server-time"


def test_the_real_time_server_lists_and_answers(time_server: Path, tmp_path: Path) -> None:
    launch = Launch(
        name="time",
        command=(str(time_server), "--local-timezone", "UTC"),
        cwd=tmp_path,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path)},
        log=tmp_path / "time.log",
    )

    async def scenario() -> None:
        async with Supervisor(settings=Settings(terminate_grace=0.5), redactor=Redactor()) as sup:
            names = {tool["name"] for tool in await sup.list_tools(launch)}
            assert {"get_current_time", "convert_time"} <= names
            result = await sup.call_tool(
                launch, "get_current_time", {"timezone": "Europe/Paris"}, timeout=10
            )
            assert not result.is_error
            assert "Europe/Paris" in result.content[0]["text"]

    anyio.run(scenario)
