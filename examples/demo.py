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
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLONED = Path(sys.executable).parent / "cloned"


def step(
    title: str,
    *args: str,
    cwd: Path,
    env: dict[str, str],
    expect: int = 0,
    stdin: str | None = None,
) -> str:
    shown = (
        f"printf %s '...' | cloned {shlex.join(args)}" if stdin else f"cloned {shlex.join(args)}"
    )
    print(f"\n== {title}\n$ {shown}", flush=True)
    proc = subprocess.run(
        [str(CLONED), *args],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        input=stdin,
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


def approve_all(repo: Path, env: dict[str, str]) -> None:
    """Approve every pending request with the demo key (as the workspace's admin)."""
    listed = json.loads(
        subprocess.run(
            [str(CLONED), "approvals", "list", "--json"],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    for request in (r["id"] for r in listed if r["status"] == "pending"):
        step(
            "An admin approves it",
            "approvals",
            "approve",
            request,
            "--key",
            "demo",
            cwd=repo,
            env=env,
        )


def publish_clock(repo: Path, base: Path, env: dict[str, str], version: str, tools: str) -> None:
    """The demo publisher releases clock `version` serving `tools` (demo keys, local registry)."""
    src = base / f"clock-{version}"
    shutil.copytree(repo / "vendor" / "src" / "clock", src)
    for name in ("connector.yaml", "server.py"):
        text = (src / name).read_text().replace("1.0.0", version)
        text = text.replace("tools: [now, convert]", f"tools: [{tools}]")
        released = ", ".join(f'"{tool.strip()}"' for tool in tools.split(","))
        text = text.replace('RELEASED = ("now", "convert")', f"RELEASED = ({released})")
        (src / name).write_text(text)
    archive = base / f"clock-{version}.tar.gz"
    step(
        f"The publisher packs clock {version}",
        "connectors",
        "pack",
        str(src),
        "--out",
        str(archive),
        cwd=base,
        env=env,
    )
    step(
        "... and publishes it, signed", "registry", "publish", str(repo / "vendor" / "registry"),
        str(archive), "--key", "demo-publisher", "--online-key", "demo-online", cwd=base, env=env,
    )  # fmt: skip


def set_clock(repo: Path, version: str, allow: str) -> None:
    path = repo / ".cloned" / "registry.yaml"
    text = re.sub(
        r"(package: demo/clock\}\}\n  version: )[0-9.]+", rf"\g<1>{version}", path.read_text()
    )
    text = re.sub(r"allow: \[now, convert[^\]]*\]", f"allow: [{allow}]", text)
    path.write_text(text)
    git("commit", "-q", "-am", f"clock {version}", cwd=repo)


def connectors(repo: Path, base: Path, env: dict[str, str]) -> None:
    """Signed installs, a tampered package refused, an upgrade that widens the tools needing
    approval, and a delete that archives."""
    keys = Path(env["CLONED_HOME"]) / "keys"
    for name in ("demo-online", "demo-publisher"):
        shutil.copy(repo / "vendor" / "demo-keys" / name, keys / name)
        (keys / name).chmod(0o600)
    step("The connectors apply installed, each verified", "connectors", "list", cwd=repo, env=env)
    step("Their installed files verify", "connectors", "verify", cwd=repo, env=env)

    publish_clock(repo, base, env, "1.0.1", "now, convert")
    target = next((repo / "vendor" / "registry" / "targets" / "demo").glob("*.clock-1.0.1.tar.gz"))
    good = target.read_bytes()
    target.write_bytes(good[:-64] + bytes(64))
    set_clock(repo, "1.0.1", "now, convert")
    step(
        "Someone swapped the 1.0.1 package on the registry: apply refuses it",
        "apply",
        cwd=repo,
        env=env,
        expect=1,
    )
    step(
        "The refusal is in the audit log",
        "audit",
        "log",
        "--type",
        "connector.refused",
        cwd=repo,
        env=env,
    )
    target.write_bytes(good)
    step(
        "With the signed package back, the upgrade applies (it declares nothing new)",
        "apply",
        cwd=repo,
        env=env,
    )

    publish_clock(repo, base, env, "1.1.0", "now, convert, between")
    set_clock(repo, "1.1.0", "now, convert, between")
    step("clock 1.1.0 declares a new tool: policy wants an admin", "plan", cwd=repo, env=env)
    step("Apply holds it (exit 3)", "apply", cwd=repo, env=env, expect=3)
    approve_all(repo, env)
    step(
        "Approved: the upgrade installs; the new tool's definition, listed now, waits (exit 3)",
        "apply",
        cwd=repo,
        env=env,
        expect=3,
    )
    step("The plan shows the whole new definition to review", "plan", cwd=repo, env=env)
    approve_all(repo, env)
    step("Approved: the new tool is pinned, and only now served", "apply", cwd=repo, env=env)

    registry = repo / ".cloned" / "registry.yaml"
    registry.write_text(registry.read_text() + SCRATCHPAD)
    git("commit", "-q", "-am", "A scratchpad connector", cwd=repo)
    step(
        "A new connector after bootstrap needs an admin (exit 3)",
        "apply",
        cwd=repo,
        env=env,
        expect=3,
    )
    approve_all(repo, env)
    step(
        "Approved: it installs; its tools wait for review (exit 3)",
        "apply",
        cwd=repo,
        env=env,
        expect=3,
    )
    approve_all(repo, env)
    step("Approved: its tools are pinned", "apply", cwd=repo, env=env)
    data = repo / ".cloned" / "state" / "connectors" / "scratchpad" / "data"
    (data / "idea.txt").write_text("Ask the clock for the time in Tokyo.\n")
    registry.write_text(registry.read_text().replace(SCRATCHPAD, ""))
    git("commit", "-q", "-am", "Retire the scratchpad", cwd=repo)
    step("Deleting it needs an admin too (exit 3)", "apply", cwd=repo, env=env, expect=3)
    approve_all(repo, env)
    step("Approved: its package and data are archived, then removed", "apply", cwd=repo, env=env)
    step("The archive keeps them", "archive", "list", cwd=repo, env=env)


def pipeline_run(repo: Path, env: dict[str, str]) -> None:
    """The quickstart's Run daily-digest: apply executed it once, through the governed path."""
    step("Apply executed the Run daily-digest once", "runs", "list", cwd=repo, env=env)
    step("Its steps and the report artifact", "runs", "show", "daily-digest", cwd=repo, env=env)
    step(
        "Its audit trail: the run and each governed call",
        "runs",
        "logs",
        "daily-digest",
        cwd=repo,
        env=env,
    )
    listed = json.loads(step("As JSON", "runs", "list", "--json", cwd=repo, env=env))
    run_id = listed["runs"][0]["id"]
    step("The report itself", "artifacts", "show", "digest", "--run", run_id, cwd=repo, env=env)
    step(
        "Its provenance (in-toto, SLSA v1, DSSE) verifies against the workspace's audit key",
        "artifacts",
        "verify",
        run_id,
        cwd=repo,
        env=env,
    )
    step("A dry run of it: nothing is called", "runs", "plan", "daily-digest", cwd=repo, env=env)


def governed_calls(repo: Path, env: dict[str, str]) -> None:
    """What agents reach through `cloned gateway`, here called from the command line: the
    pinned tools, a call that goes through, a refusal before the server sees it, the stats."""
    step("The tools apply pinned for notes, as agents see them", "connectors", "tools", "notes",
         cwd=repo, env=env)  # fmt: skip
    step(
        "A governed call: allowed, pinned, arguments valid, within budget, audited",
        "connectors", "call", "notes", "add_note",
        "--args", '{"name": "launch", "text": "Ship the gateway on Friday."}',
        cwd=repo, env=env,
    )  # fmt: skip
    step(
        "Arguments that do not fit the pinned schema never reach the server (exit 1)",
        "connectors", "call", "notes", "read_note", "--args", '{"name": "Not A Name"}',
        cwd=repo, env=env, expect=1,
    )  # fmt: skip
    step("Every call is in the audit log: the stats", "connectors", "stats", cwd=repo, env=env)
    step("Budget use this period", "budgets", "status", cwd=repo, env=env)


SCRATCHPAD = """---
apiVersion: cloned/v1
kind: Connector
metadata:
  name: scratchpad
spec:
  description: Scratch notes for one project.
  source: {builtin: notes}
  version: 0.1.0
  publisher: cloned
"""


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
        text = re.sub(
            r'publicKey: "ssh-ed25519 [^"]+"',
            f'publicKey: "{public.strip()}"',
            workspace.read_text(),
        )
        # And a vault: the dev vault (a local encrypted file, its key under CLONED_HOME). Every
        # SecretRef's secret must be in it before a plan passes.
        workspace.write_text(text.replace("provider: none", "provider: dev"))
        step(
            "The quickstart's SecretRef names openai-key: set it (read from stdin, never an "
            "argument)",
            "vault",
            "set",
            "openai-key",
            cwd=repo,
            env=env,
            stdin="sk-demo-" + secrets.token_hex(16),
        )
        step("The vault lists names, never values", "vault", "list", cwd=repo, env=env)
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
        pipeline_run(repo, env)
        governed_calls(repo, env)

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
        connectors(repo, base, env)
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
