"""`make demo`: run Cloned on the bundled quickstart workspace in a throw-away repository.

Each step prints the command it runs, as a user would type it. Nothing is written outside a
temporary folder: CLONED_HOME (where keys live) points into it too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLONED = Path(sys.executable).parent / "cloned"


def step(title: str, *args: str, cwd: Path, env: dict[str, str], expect: int = 0) -> None:
    print(f"\n== {title}\n$ cloned {shlex.join(args)}", flush=True)
    code = subprocess.run([str(CLONED), *args], cwd=cwd, env=env, check=False).returncode
    if code != expect:
        sys.exit(f"demo failed: `cloned {shlex.join(args)}` exited {code}, expected {expect}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cloned-demo-") as temp:
        base = Path(temp)
        env = {**os.environ, "CLONED_HOME": str(base / "home")}
        repo = base / "quickstart"
        shutil.copytree(HERE / "quickstart", repo, ignore=shutil.ignore_patterns("state"))
        subprocess.run(["git", "init", "-q", str(repo)], check=True)

        step("Validate the quickstart workspace", "validate", cwd=repo, env=env)
        step("The same, for CI", "validate", "--json", cwd=repo, env=env)

        budgets = repo / ".cloned" / "budgets.yaml"
        good = budgets.read_text()
        budgets.write_text(
            good.replace("period: week", "period: weekly").replace(
                "limits: {calls: 500}", 'limits: {calls: "500"}'
            )
        )
        step(
            "A broken edit: every problem, with file:line:col",
            "validate",
            cwd=repo,
            env=env,
            expect=1,
        )
        budgets.write_text(good)

        fresh = base / "new-workspace"
        step("Start a new workspace from scratch", "init", str(fresh), cwd=base, env=env)
        step("Validate it", "validate", cwd=fresh, env=env)
        step("Approver keys", "keys", "list", cwd=base, env=env)
    print("\nDemo finished: every step behaved as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
