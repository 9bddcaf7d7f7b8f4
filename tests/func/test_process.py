"""The installed console script as a real process: what in-process tests cannot show.

Functional tests run the command line in-process (`tests.conftest.cloned`); these few keep the
process boundary honest: the script starts, exit codes reach the shell, output is the same as
in-process, and an unexpected error becomes a short message plus a crash log, not a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import cloned, cloned_process, write


def test_the_script_starts_and_prints_its_version() -> None:
    result = cloned_process("--version")
    assert result.code == 0
    assert re.fullmatch(r"cloned \d+\.\d+\.\d+\n", result.out)


def test_exit_codes_and_output_match_the_in_process_runner(workspace: Path) -> None:
    write(workspace, ".cloned/budgets.yaml", "apiVersion: cloned/v1\nkind: Budget\n")
    for args in (["validate"], ["validate", "--json"], ["plan", "--bogus"], ["--help"]):
        real = cloned_process(*args, cwd=workspace)
        inside = cloned(*args, cwd=workspace)
        assert real.code == inside.code == 1 or args == ["--help"], (args, real, inside)
        assert (real.out, real.err) == (inside.out, inside.err), args


def test_an_unexpected_error_writes_a_crash_log_not_a_traceback(
    workspace: Path, tmp_path: Path
) -> None:
    # A bug nothing expects, planted in a real process that then runs the real entry point.
    planted = (
        "import sys, reconciler.load.workspace as w\n"
        "def boom(*a, **k): raise RuntimeError('planted')\n"
        "w.load_desired_state = boom\n"
        "from reconciler.cli.main import main\n"
        "sys.argv = ['cloned', 'validate']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", planted],
        cwd=workspace,
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    found = re.fullmatch(
        r"Error: internal error \(RuntimeError\); this is a bug in Cloned\. Details: (\S+)\n",
        result.stderr,
    )
    assert found, result.stderr
    log = Path(found.group(1)).read_text()
    assert re.match(
        r"cloned \d+\.\d+\.\d+, Python 3\.\d+\.\d+, \S+\nargv: \['cloned', 'validate'\]\n", log
    )
    assert "RuntimeError: planted" in log


def test_help_starts_without_importing_the_core() -> None:
    # `cloned --help` and every command's start stay fast only while the CLI imports its
    # implementation on use: a module-level import of a use case pulls in the whole engine.
    probe = (
        "import sys\n"
        "from reconciler.cli.main import run\n"
        "sys.argv = ['cloned', '--help']\n"
        "run(['--help'])\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split("\n"))
    heavy = {"pydantic", "ruamel.yaml", "git", "sqlite3", "cryptography", "watchfiles"}
    assert not heavy & loaded, heavy & loaded
    core = sorted(
        m
        for m in loaded
        if m.startswith(("reconciler.usecases", "reconciler.engine", "reconciler.load"))
        or m.startswith(("reconciler.state", "reconciler.approvals", "reconciler.audit"))
    )
    assert not core, core
