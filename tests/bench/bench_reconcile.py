"""Benchmark of the reconcile loop (`make bench`, after bench.py): commit-to-applied latency.

Starts `cloned reconcile --watch --log-format json` on a git repository, waits until it watches,
then makes `--commits` commits one after another, each lowering one Budget limit (applied
automatically under the built-in `baseline` policy). Latency is the time from `git commit`
returning to the loop's `cycle` line for that commit being read from its stdout: by then the
change is applied, its `change.applied` event recorded, the status file written and the audit
commit made. Reported per workspace: the median and maximum latency, and the median time the
cycle itself took (the rest is noticing the commit: file events, debounce, reading HEAD).

Workspaces: `examples/quickstart` (11 resources) and a generated one of `--size` resources
(bench.py's generator), both fresh git repositories under the git-ignored `.bench/`, the
validation cache filled first. Standard library only; the commands are the project's `.venv`.

    python tests/bench/bench_reconcile.py [--commits 10] [--size 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from timing import git, hermetic_env, run_once

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / ".bench"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
QUICKSTART = REPO / "examples" / "quickstart"
GOAL_MS = 1000.0
"""Goal: a commit is applied within a second with --watch."""
WAIT = 60.0
CALLS = re.compile(r"calls: (\d+)")


@dataclass
class Latency:
    """Commit-to-applied latencies on one workspace, in milliseconds."""

    workspace: str
    root: str
    resources: int
    budget_file: str
    samples: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.samples)


class Watcher:
    """A `cloned reconcile --watch` process; its JSON log lines arrive on a queue."""

    def __init__(self, cloned: Path, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(cloned), "reconcile", "--watch", "--log-format", "json"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), json.loads(line)))

    def wait_for(self, test: Callable[[dict[str, Any]], bool]) -> tuple[float, dict[str, Any]]:
        """(when it was read, the event) of the first event that passes `test`."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                read, event = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.stop()
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise SystemExit(f"bench: the reconcile loop went quiet; stderr:\n{err}") from None
            if event["event"] == "error":
                self.stop()
                raise SystemExit(f"bench: the reconcile loop failed: {event}")
            if test(event):
                return read, event

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=WAIT)
            if code != 0:
                raise SystemExit(f"bench: the reconcile loop exited {code} on SIGTERM")


def head(root: Path) -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def measure(cloned: Path, env: dict[str, str], result: Latency, commits: int) -> None:
    """`commits` timed commits, each lowering `calls` in the budget file by one."""
    root = Path(result.root)
    budget = Path(result.root) / result.budget_file
    loop = Watcher(cloned, root, env)
    try:
        loop.wait_for(lambda e: e["event"] == "cycle")  # the bootstrap
        loop.wait_for(lambda e: e["event"] == "watching")
        for _ in range(commits):
            text = budget.read_text()
            calls = int(CALLS.search(text).group(1))  # type: ignore[union-attr]
            budget.write_text(CALLS.sub(f"calls: {calls - 1}", text, count=1))
            git("commit", "-q", "-am", f"Lower a budget to {calls - 1} calls", cwd=root, env=env)
            committed = time.perf_counter()
            made = head(root)
            read, event = loop.wait_for(lambda e, c=made: e["event"] == "cycle" and e["head"] == c)
            if event["outcomes"] != {"applied": 1}:
                raise SystemExit(f"bench: expected one applied change, the loop said {event}")
            result.samples.append((read - committed) * 1000)
            result.cycle_ms.append(float(event["duration_ms"]))
            time.sleep(0.2)  # untimed: let the loop's own audit commit settle
    finally:
        loop.stop()


def fresh_repo(root: Path, env: dict[str, str], cloned: Path) -> None:
    git("init", "-q", "-b", "main", cwd=root, env=env)
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", "Benchmark workspace", cwd=root, env=env)
    run_once([str(cloned), "validate"], root, env)  # fills the validation cache


def quickstart(work: Path, env: dict[str, str], cloned: Path) -> Latency:
    root = work / "reconcile-quickstart"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns("state"))
    fresh_repo(root, env, cloned)
    return Latency("examples/quickstart", str(root), 11, ".cloned/budgets.yaml")


def generated(work: Path, env: dict[str, str], cloned: Path, size: int) -> Latency:
    from bench import create_workspace

    root = work / f"reconcile-ws-{size}"
    create_workspace(root, size, env)  # commits it
    run_once([str(cloned), "validate"], root, env)
    budgets = ".cloned/budgets/budgets-0000.yaml"
    return Latency(f"generated ({size:,} resources)", str(root), size, budgets)


def report(results: list[Latency], commits: int) -> str:
    out = ["## Reconcile loop: commit to applied with `--watch`\n"]
    out.append(
        "| workspace | commits | median ms | max ms | cycle ms (median) | goal < 1 s (median) |"
    )
    out.append("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        met = "**met**" if r.median() < GOAL_MS else "**not met**"
        out.append(
            f"| {r.workspace} | {len(r.samples)} | {r.median():,.0f} | {max(r.samples):,.0f} "
            f"| {statistics.median(r.cycle_ms):,.0f} | {met} |"
        )
    out.append("")
    out.append(
        f"From `git commit` returning to the loop's `cycle` line for that commit ({commits} "
        "commits, each lowering one Budget limit); cycle ms: the loop's own time for the cycle "
        "(load the committed desired state, drift check, apply, audit commit)."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--commits", type=int, default=10, help="timed commits per workspace")
    parser.add_argument("--size", type=int, default=1000, help="generated workspace (0: none)")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR, help="default: .bench/")
    parser.add_argument(
        "--python", type=Path, default=VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
    )
    args = parser.parse_args(argv)
    if args.commits < 1:
        parser.error("--commits must be at least 1")
    cloned = args.python.parent / "cloned"
    work: Path = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = hermetic_env(work / "env")
    workspaces = [quickstart(work, env, cloned)]
    if args.size:
        workspaces.append(generated(work, env, cloned, args.size))
    for latency in workspaces:
        print(f"bench: reconcile --watch on {latency.workspace}", file=sys.stderr, flush=True)
        measure(cloned, env, latency, args.commits)
    machine = f"CPython {platform.python_version()} on {os.cpu_count()} CPUs"
    print(f"# `bench_reconcile.py`, {time.strftime('%Y-%m-%d')}: {machine}\n")
    print(report(workspaces, args.commits))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in workspaces], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
