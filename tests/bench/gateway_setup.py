"""Workspaces and peers for `bench_gateway.py` (`make bench`), all under the git-ignored `.bench/`.

- `latency_workspace`: a Workspace with two Connectors, the real `mcp-server-time` (a `pypi`
  connector hash-locked with `cloned connectors lock`, installed by apply from `.wheelhouse`
  into its own environment) and the builtin `notes` (standard library only), applied
  (bootstrap, so its tool pins apply automatically).
- `start_workspace`: a Workspace with 20 `path` connectors, each a copy of the tiny stdlib
  server of `tests/fakes/tiny_mcp.py`, applied; none is started by the apply's pins later.
- `proxy_command`: `mcp-proxy` 0.13.0 from PyPI in its own venv (`pip download` once into
  `.bench/wheels`, installed from there), or None with the reason when it cannot be had.
- `launch`: the exact command, folder and environment the gateway's runtime starts a connector
  with (`providers.starting.start_of`: inside bubblewrap when it can isolate here), so the
  direct client talks to the same server, started the same way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from timing import WORKSPACE, git

from tests.wheelhouse import TIME_PACKAGE, TIME_VERSION

REPO = Path(__file__).resolve().parents[2]
CLONED = REPO / ".venv" / "bin" / "cloned"
WHEELHOUSE = REPO / ".wheelhouse"
WHEELS = REPO / ".bench" / "wheels"
PROXY = "mcp-proxy==0.13.0"
LATENCY_CONNECTORS = f"""\
apiVersion: cloned/v1
kind: Connector
metadata: {{name: time}}
spec:
  source: {{pypi: {{package: {TIME_PACKAGE}, lock: locks/time.txt}}}}
  version: {TIME_VERSION}
  publisher: modelcontextprotocol
---
apiVersion: cloned/v1
kind: Connector
metadata: {{name: notes}}
spec:
  source: {{builtin: notes}}
  version: 0.1.0
  publisher: cloned
"""
TINY_MANIFEST = """\
name: {name}
version: 0.1.0
publisher: bench
run: {{command: [python, server.py]}}
tools: [lookup, search]
"""


def pip_env(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """`env` with pip pointed at the local wheelhouse and nothing else (as the tests do)."""
    if not (WHEELHOUSE / ".stamp").is_file():
        raise SystemExit(f"bench: {WHEELHOUSE} is not filled: run `make wheelhouse` first")
    return {
        **env,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_NO_CACHE_DIR": "1",
        "RUSTUP_HOME": str(scratch / "rustup"),
    }


def cloned(*args: str, cwd: Path, env: dict[str, str]) -> str:
    """Run `cloned ARGS` (untimed); its stdout, or exit the benchmark with what it said."""
    done = subprocess.run([str(CLONED), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: cloned {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _repository(root: Path, files: dict[str, str], env: dict[str, str]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for rel, text in {".gitignore": ".cloned/state/\n", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git("init", "-q", "-b", "main", cwd=root, env=env)


def _commit(root: Path, env: dict[str, str]) -> None:
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", "bench", cwd=root, env=env)


def latency_workspace(root: Path, env: dict[str, str]) -> Path:
    """The applied workspace of `time` (pypi) and `notes` (builtin)."""
    files = {".cloned/workspace.yaml": WORKSPACE, ".cloned/connectors.yaml": LATENCY_CONNECTORS}
    _repository(root, files, env)
    pip = pip_env(env, root.parent)
    cloned("connectors", "lock", "time", cwd=root, env=pip)
    _commit(root, env)
    cloned("apply", cwd=root, env=pip)
    return root


def start_workspace(root: Path, env: dict[str, str], count: int = 20) -> Path:
    """The applied workspace of `count` tiny path connectors, each with two pinned tools."""
    sys.path.insert(0, str(REPO))
    from tests.fakes.tiny_mcp import server_source

    files = {".cloned/workspace.yaml": WORKSPACE}
    docs = []
    for index in range(count):
        name = f"tiny{index:02d}"
        files[f"tools/{name}/connector.yaml"] = TINY_MANIFEST.format(name=name)
        files[f"tools/{name}/server.py"] = server_source(["lookup", "search"], f"# {name}")
        docs.append(
            f"apiVersion: cloned/v1\nkind: Connector\nmetadata: {{name: {name}}}\nspec:\n"
            f"  source: {{path: tools/{name}}}\n  version: 0.1.0\n  publisher: bench\n"
        )
    files[".cloned/connectors.yaml"] = "---\n".join(docs)
    _repository(root, files, env)
    _commit(root, env)
    cloned("apply", cwd=root, env=env)
    return root


def launch(root: Path, name: str) -> Any:
    """The runtime's `Launch` of applied connector `name` (command, cwd, exact environment)."""
    sys.path.insert(0, str(REPO))
    from reconciler.providers.starting import sandbox_of, start_of
    from reconciler.state import installs
    from reconciler.state.db import StateDB

    with StateDB.existing(root) as db:
        assert db is not None
        record = installs.all_installs(db)[f"connector.{name}"].record
    lock = json.loads((root / ".cloned" / "cloned.lock").read_text())
    state = lock["resources"][f"connector.{name}"]["state"]
    return start_of(root, name, state["package"], record, sandbox_of(state["spec"])).launch


def proxy_command(work: Path) -> tuple[Path | None, str]:
    """`mcp-proxy`'s console script in its own venv, or (None, why it could not be installed)."""
    venv = work / "proxy-venv"
    script = venv / "bin" / "mcp-proxy"
    if script.is_file():
        return script, "installed"
    if not any(WHEELS.glob("mcp_proxy-0.13.0-*.whl")):
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary",
                ":all:",
                "--dest",
                str(WHEELS),
                PROXY,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fetched.returncode != 0:
            return None, f"`pip download {PROXY}` failed: {_last_line(fetched.stderr)}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(WHEELS),
            PROXY,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        return None, f"installing {PROXY} from {WHEELS} failed: {_last_line(installed.stderr)}"
    return script, "installed"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and "is ignored" not in line]
    return lines[-1] if lines else "no output"
