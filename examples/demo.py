"""`make demo`: the whole Cloned story on the bundled quickstart, in a throw-away repository.

validate -> plan -> apply (bootstrap) -> raise a budget -> plan shows it needs approval -> apply
opens an approval request -> approve it with the demo key -> apply converges -> audit verify.
Each step prints the command as a user would type it. Nothing is written outside a temporary
folder: CLONED_HOME (where keys live) points into it too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLONED = Path(sys.executable).parent / "cloned"


def step(title: str, *args: str, cwd: Path, env: dict[str, str], expect: int = 0) -> str:
    print(f"\n== {title}\n$ cloned {shlex.join(args)}", flush=True)
    proc = subprocess.run(
        [str(CLONED), *args], cwd=cwd, env=env, check=False, capture_output=True, text=True
    )
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    if proc.returncode != expect:
        sys.exit(
            f"demo failed: `cloned {shlex.join(args)}` exited {proc.returncode}, expected {expect}"
        )
    return proc.stdout


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cloned-demo-") as temp:
        base = Path(temp)
        env = {
            **os.environ,
            "CLONED_HOME": str(base / "home"),
            "GIT_AUTHOR_NAME": "Demo",
            "GIT_AUTHOR_EMAIL": "demo@example.com",
            "GIT_COMMITTER_NAME": "Demo",
            "GIT_COMMITTER_EMAIL": "demo@example.com",
        }
        repo = base / "quickstart"
        shutil.copytree(HERE / "quickstart", repo, ignore=shutil.ignore_patterns("state"))
        git("init", "-q", "-b", "main", cwd=repo)

        # The quickstart names an approver "demo"; give it a key whose private half we hold.
        public = step("An approver key for the demo", "keys", "generate", "demo", cwd=base, env=env)
        workspace = repo / ".cloned" / "workspace.yaml"
        workspace.write_text(
            re.sub(
                r'publicKey: "ssh-ed25519 [^"]+"',
                f'publicKey: "{public.strip()}"',
                workspace.read_text(),
            )
        )
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", "Quickstart workspace", cwd=repo)

        step("Validate the desired state", "validate", cwd=repo, env=env)
        step(
            "Plan: everything is new (bootstrap), so policy lets it all through",
            "plan",
            cwd=repo,
            env=env,
        )
        step("Apply", "apply", cwd=repo, env=env)
        step("Nothing left to do", "plan", "--detailed-exitcode", cwd=repo, env=env)

        budgets = repo / ".cloned" / "budgets.yaml"
        budgets.write_text(budgets.read_text().replace("cost_usd: 50,", "cost_usd: 55,"))
        step("Raise a budget: baseline policy gates it", "plan", cwd=repo, env=env)
        step("Apply opens an approval request (exit 3)", "apply", cwd=repo, env=env, expect=3)
        listed = json.loads(step("The request", "approvals", "list", "--json", cwd=repo, env=env))
        request = next(item["id"] for item in listed if item["status"] == "pending")
        step(
            "Approve it with the demo key",
            "approvals",
            "approve",
            request,
            "--key",
            "demo",
            "--comment",
            "Q4 research push",
            cwd=repo,
            env=env,
        )
        step("The approval verifies", "approvals", "verify", cwd=repo, env=env)
        step("Apply again: the approved change goes through", "apply", cwd=repo, env=env)
        step("The audit trail", "audit", "log", cwd=repo, env=env)
        step("The audit chain verifies", "audit", "verify", cwd=repo, env=env)

        lock = json.loads((repo / ".cloned" / "cloned.lock").read_text())
        segments = sorted((repo / ".cloned" / "audit").rglob("*.jsonl"))
        print("\n== Summary")
        print(f"  applied resources in cloned.lock: {len(lock['resources'])}")
        print(f"  audit files under .cloned/audit/: {len(segments)}")
        print(
            f"  approval records under .cloned/approvals/: "
            f"{len(list((repo / '.cloned' / 'approvals').rglob('*.json')))}"
        )
    print("\nDemo finished: every step behaved as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
