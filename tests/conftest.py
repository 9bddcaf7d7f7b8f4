"""Shared fixtures: hermetic environment, temp git repos, and a runner for the real CLI.

Every test gets a fake HOME and its own CLONED_HOME; git reads no global or system config and
commits with a pinned author. A test that writes into the fake HOME fails (pre-commit's guard).

`cloned(...)` runs the command line in this process, through the console script's own entry
point and error boundary, with the environment, folder, argv and standard streams a fresh process
would have; that keeps functional tests fast. Start-up, signals, crashes and the installed
script are tested through `CLONED` in a real subprocess (`cloned_process`).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLONED = Path(sys.executable).parent / "cloned"
QUICKSTART = REPO / "examples" / "quickstart"


def copy_quickstart(repo: Path, *, runs: bool = False) -> Path:
    """The quickstart workspace in `repo`: its `.cloned/` (without state) and the demo
    registry its Connector installs from (`vendor/registry`, a `file:` URL in the repo).

    Without `runs`, its notes-digest Pipeline and Run are left out: an apply would execute the
    Run, and the tests that change the quickstart's connectors are not about runs
    (tests/func/test_runs.py and `make demo` are)."""
    import shutil

    shutil.copytree(
        QUICKSTART / ".cloned",
        repo / ".cloned",
        ignore=shutil.ignore_patterns("state"),
        dirs_exist_ok=True,
    )
    if not runs:
        (repo / ".cloned" / "pipelines" / "notes-digest.yaml").unlink()
    shutil.copytree(
        QUICKSTART / "vendor" / "registry", repo / "vendor" / "registry", dirs_exist_ok=True
    )
    return repo


@pytest.fixture(autouse=True)
def hermetic_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    cloned_home = tmp_path_factory.mktemp("cloned-home")
    for key in list(os.environ):
        if key.startswith(("GIT_", "CLONED_", "XDG_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLONED_HOME", str(cloned_home))
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    monkeypatch.setenv("NO_COLOR", "1")
    yield cloned_home
    written = sorted(str(path.relative_to(home)) for path in home.rglob("*"))
    assert not written, f"test wrote into $HOME: {written}"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cloned(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str = ""
) -> Result:
    """Run the real `cloned` command line in this process (see the module docstring), with
    `stdin` piped in (not a terminal)."""
    from reconciler.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with _fresh_process(args, cwd, env or {}):
        sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO(stdin)
        code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


# A captured process has no terminal: help text wraps at click's fallback width.
NO_TERMINAL = {"COLUMNS": "80", "LINES": "24"}


@contextlib.contextmanager
def _fresh_process(args: tuple[str, ...], cwd: Path | None, env: dict[str, str]) -> Iterator[None]:
    """What a new process would see, restored afterwards: environment, folder, argv, streams."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdout, sys.stderr, sys.stdin, sys.argv)
    os.environ.update({**NO_TERMINAL, **env})
    sys.argv = [str(CLONED), *args]
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdout, sys.stderr, sys.stdin, sys.argv = saved_streams


def cloned_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run the installed `cloned` console script as a real subprocess."""
    proc = subprocess.run(
        [str(CLONED), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **NO_TERMINAL, **(env or {})},
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(*args: str, cwd: Path) -> str:
    """Run git in `cwd` and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in `repo`, commit it, and return the new commit's id."""
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository."""
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` (and .git) with size and mtime, to prove nothing changed."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP14W5IVBeT5CFPOBVA+0aS3LQQIgNLNQT3/opUerjda alice"
)

WORKSPACE_YAML = f"""\
apiVersion: cloned/v1
kind: Workspace
metadata:
  name: demo
spec:
  policyPacks: [baseline]
  approvers:
    - name: alice
      publicKey: "{PUBLIC_KEY}"
      groups: [admins]
"""


def write(root: Path, rel: str, text: str | bytes) -> Path:
    """Write a file under `root`, creating folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def workspace(repo: Path) -> Path:
    """A git repository with a minimal valid `.cloned/` (one Workspace)."""
    write(repo, ".cloned/workspace.yaml", WORKSPACE_YAML)
    return repo


@pytest.fixture
def applied(repo: Path) -> Path:
    """The quickstart in `repo`, committed and applied: its connectors installed and their
    tools pinned (a bootstrap, so everything applies without approvals)."""
    copy_quickstart(repo)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "quickstart")
    result = cloned("apply", cwd=repo)
    assert result.code == 0, result.out + result.err
    return repo
