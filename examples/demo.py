"""`make demo`: the whole Cloned story on the bundled quickstart, in a throw-away repository.

validate -> plan -> apply (bootstrap) -> raise a budget -> plan shows it needs approval -> apply
is gated on a branch -> CI dry-run (plan --base main) -> approve on the branch with the demo
key -> merge -> apply converges with an audit commit -> drift check -> audit verify.
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


IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "Demo",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
}


def git(*args: str, cwd: Path) -> str:
    """Run git as the demo's own identity (a fresh machine may have none configured)."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    ).stdout


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cloned-demo-") as temp:
        base = Path(temp)
        env = {**os.environ, "CLONED_HOME": str(base / "home"), **IDENTITY}
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

        # The GitOps way: a branch, a dry-run against main as CI runs it, an approval made on
        # the branch, a merge, and the apply that converges (with its audit commit).
        git("checkout", "-q", "-b", "raise-budget", cwd=repo)
        budgets = repo / ".cloned" / "budgets.yaml"
        budgets.write_text(budgets.read_text().replace("cost_usd: 50,", "cost_usd: 55,"))
        git("commit", "-q", "-am", "Raise the monthly budget", cwd=repo)
        planned = step(
            "On a branch, raise a budget; CI plans it against main: baseline policy gates it",
            "plan",
            "--base",
            "main",
            "--json",
            cwd=repo,
            env=env,
        )
        request = next(c["approvals"]["request"] for c in json.loads(planned)["changes"])
        step(
            "The pull-request comment CI would post",
            "plan",
            "--base",
            "main",
            "--format",
            "markdown",
            cwd=repo,
            env=env,
        )
        step(
            "CI's approval gate: not approved yet (exit 3)",
            "approvals",
            "verify",
            "--base",
            "main",
            cwd=repo,
            env=env,
            expect=3,
        )
        step(
            "A reviewer approves on the branch with the demo key",
            "approvals",
            "approve",
            request,
            "--key",
            "demo",
            "--base",
            "main",
            "--comment",
            "Q4 research push",
            cwd=repo,
            env=env,
        )
        git("add", ".cloned/approvals", cwd=repo)
        git("commit", "-q", "-m", "Approve the budget raise", cwd=repo)
        step(
            "CI's approval gate passes", "approvals", "verify", "--base", "main", cwd=repo, env=env
        )
        git("checkout", "-q", "main", cwd=repo)
        git("merge", "-q", "--ff-only", "raise-budget", cwd=repo)
        step("Merged: apply converges, approved by demo", "apply", cwd=repo, env=env)
        step("No drift", "drift", cwd=repo, env=env)
        log = git("log", "--format=%h %an: %s", cwd=repo)
        print(f"\n== The history: every apply made an audit commit\n$ git log\n{log}")
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
