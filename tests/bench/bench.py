"""Benchmark of `cloned validate`, `cloned plan` and `cloned apply` on generated workspaces.

`make bench` runs this, then `bench_audit.py`. Generates realistic workspaces (one Workspace,
two PolicyPacks, then SecretRefs, Connectors, Budgets, Pipelines, Blueprints and Runs spread
over many multi-document files) under the git-ignored `.bench/` folder, checks that each
validates, then times whole processes:

- `python -c pass` (interpreter start-up) and `cloned --help` (CLI start-up);
- `cloned validate --no-cache` (parse + validate everything, cache neither read nor written);
- `cloned validate` after deleting `.cloned/state/` (true cold: parse, validate, write the cache);
- `cloned validate` with the cache populated (warm);
- then, on the same workspaces with the cache warm (`plan_apply.py`): `cloned plan` with nothing
  applied (bootstrap), `cloned apply` of that bootstrap, a no-op `cloned plan` after it, and on
  one size an apply of budget-lowering updates; and `cloned plan` on examples/quickstart next to
  `python -c pass`.

Workspace, PolicyPack, Budget, SecretRef, Registry and Connector are managed by plan and apply
(the generated Connectors install the builtin `notes`, so an apply installs one store entry
and plans pin offline); the other kinds are validated and reported as not managed yet. The
generated policy lets the bootstrap and
lowered limits apply automatically, so every timed apply exits 0.

Each figure is the median of `--repeat` runs. "Per resource" is the marginal cost: the time
minus the same command on a workspace holding only its Workspace, divided by the number of
resources. Standard library only, so it runs with any interpreter; the commands timed are the
project's own `.venv` ones.

    python tests/bench/bench.py [--sizes 100,1000,10000] [--repeat 5] [--json FILE]
                                [--update-size 1000] [--no-plan]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plan_apply import (
    LifecycleResult,
    QuickstartResult,
    bench_lifecycle,
    bench_quickstart,
)
from plan_apply import report as plan_apply_report
from timing import (
    SLOW_REPEAT,
    SLOW_RUN_SECONDS,
    Timing,
    WarmCache,
    git,
    growth,
    hermetic_env,
    measure,
    ms,
    run_once,
    us,
)

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / ".bench"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP14W5IVBeT5CFPOBVA+0aS3LQQIgNLNQT3/opUerjda alice"
)
"""A real Ed25519 public key line (the one tests/conftest.py uses)."""

# --- workspace generation ----------------------------------------------------------------------

SERVICES = (
    "github", "gitlab", "slack", "jira", "postgres", "s3", "pagerduty", "linear", "notion",
    "confluence", "zendesk", "stripe", "snowflake", "bigquery", "datadog", "sentry",
)  # fmt: skip
VERBS = (
    "triage", "summarise", "sync", "backfill", "review", "digest", "escalate", "label",
    "archive", "report", "classify", "enrich",
)  # fmt: skip
TEAMS = tuple(f"team-{index:02d}" for index in range(12))
KIND_SHARES = (
    ("SecretRef", 0.15),
    ("Connector", 0.20),
    ("Budget", 0.10),
    ("Pipeline", 0.20),
    ("Blueprint", 0.05),
)
"""Share of the resources after the Workspace and the two PolicyPacks; Runs take the rest."""
MIN_SIZE = 20


def second_key() -> str:
    """A well-formed OpenSSH ed25519 public key line for a second approver (deterministic)."""
    point = hashlib.sha256(b"cloned-bench-bob").digest()
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", point))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} bob"


def kind_counts(total: int) -> dict[str, int]:
    """How many resources of each kind a workspace of `total` resources holds."""
    if total == 1:
        return {"Workspace": 1}
    rest = total - 3
    counts = {"Workspace": 1, "PolicyPack": 2}
    for kind, share in KIND_SHARES:
        counts[kind] = max(1, int(rest * share))
    counts["Run"] = total - sum(counts.values())
    return counts


def _team(index: int) -> str:
    return TEAMS[index % len(TEAMS)]


def connector_name(index: int) -> str:
    return f"{SERVICES[index % len(SERVICES)]}-{index:05d}"


def secret_name(index: int) -> str:
    return f"{SERVICES[index % len(SERVICES)]}-token-{index:05d}"


def budget_name(index: int) -> str:
    return f"budget-{_team(index)}-{index:05d}"


def pipeline_name(index: int) -> str:
    return f"{VERBS[index % len(VERBS)]}-{_team(index)}-{index:05d}"


class Generator:
    """Documents of one workspace; every reference resolves, so the workspace is valid."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.n_secrets = counts.get("SecretRef", 0)
        self.n_connectors = counts.get("Connector", 0)
        self.n_budgets = counts.get("Budget", 0)
        self.n_pipelines = counts.get("Pipeline", 0)

    def workspace(self) -> str:
        packs = ", ".join(["baseline", *self.pack_names()])
        return f"""\
# The workspace: who approves, which policy packs apply, defaults for everything else.
apiVersion: cloned/v1
kind: Workspace
metadata:
  name: bench
  labels:
    env: production
spec:
  description: Generated benchmark workspace
  tier: team
  policyPacks: [{packs}]
  approvers:
    - name: alice
      publicKey: "{PUBLIC_KEY}"
      groups: [admins, platform]
    - name: bob
      publicKey: "{second_key()}"
      groups: [platform]
  defaults:
    egress:
      allowHosts: [api.github.com, "*.slack.com"]
    budgets:
      period: month
      onExceed: requireApproval
  vault:
    provider: dev
  git:
    auditCommits: true
    author:
      name: Cloned Bot
      email: cloned@example.com
"""

    def pack_names(self) -> list[str]:
        return ["security", "cost-control"][: self.counts.get("PolicyPack", 0)]

    def policy_pack(self, index: int) -> str:
        name = self.pack_names()[index]
        return f"""\
apiVersion: cloned/v1
kind: PolicyPack
metadata:
  name: {name}
spec:
  description: House rules ({name})
  extends: {"strict" if index == 0 else "baseline"}
  rules:
    - name: no-workspace-delete
      match:
        kinds: [Workspace]
        actions: [delete]
      decision: deny
    # Not at bootstrap, like the built-in rules: creating the packs starts the workspace.
    - name: high-risk-needs-two
      match:
        risk: [high]
        bootstrap: false
      decision: approval
      approvals:
        count: 2
        groups: [admins, platform]
        distinct: true
        excludeAuthor: true
    - name: budget-increase
      match:
        kinds: [Budget]
        fields: [spec.limits.cost_usd]
        increase:
          percentOver: 20
      decision: approval
      approvals:
        groups: [admins]
    - name: low-risk-auto
      match:
        risk: [low]
      decision: auto
  egress:
    allowHosts: [api.github.com, "*.atlassian.net", "hooks.slack.com:443"]
    denyHosts: ["*.internal"]
  tools:
    deny: [shell.exec, fs.delete]
    requireApproval: [github.merge, stripe.refund]
  redaction:
    - name: aws-access-key
      regex: 'AKIA[0-9A-Z]{{16}}'
    - name: github-token
      regex: '\\bghp_[A-Za-z0-9]{{36}}\\b'
  rateLimits:
    callsPerMinute: 600
    callsPerHour: 20000
"""

    def secret(self, index: int) -> str:
        service = SERVICES[index % len(SERVICES)]
        users = ""
        if self.n_connectors:
            users = f"""\
  usedBy:
    connectors: [{connector_name(index % self.n_connectors)}]
"""
            if self.n_pipelines and index % 3 == 0:
                users += f"    pipelines: [{pipeline_name(index % self.n_pipelines)}]\n"
        return f"""\
apiVersion: cloned/v1
kind: SecretRef
metadata:
  name: {secret_name(index)}
  labels:
    team: {_team(index)}
    service: {service}
  annotations:
    rotated: "2026-10-{index % 28 + 1:02d}"
    owner: {_team(index)}@example.com
spec:
  description: API token for {service} ({_team(index)})
  ref: vault://{_team(index)}-{service}-token-{index:05d}
{users}"""

    def connector(self, index: int) -> str:
        name = connector_name(index)
        service = SERVICES[index % len(SERVICES)]
        secrets = f"[{secret_name(index % self.n_secrets)}]" if self.n_secrets else "[]"
        return f"""\
apiVersion: cloned/v1
kind: Connector
metadata:
  name: {name}
  labels:
    team: {_team(index)}
    service: {service}
spec:
  description: {service.title()} tools for {_team(index)}
  source: {{builtin: notes}}
  version: 0.1.0
  publisher: cloned
  tools:
    allow: [{service}.list, {service}.get, {service}.search]
    deny: [{service}.delete]
  egress:
    allowHosts: [api.{service}.com, "*.{service}.example.com:443"]
  secrets: {secrets}
  limits:
    ratePerMinute: {60 + index % 5 * 60}
    timeoutSeconds: {15 + index % 4 * 15}
    concurrency: {1 + index % 4}
  sandbox:
    profile: {"strict" if index % 3 else "standard"}
"""

    def budget(self, index: int) -> str:
        if index % 3 == 1 and self.n_connectors:
            scope = f"connector: {connector_name(index % self.n_connectors)}"
        elif index % 3 == 2 and self.n_pipelines:
            scope = f"pipeline: {pipeline_name(index % self.n_pipelines)}"
        else:
            scope = "workspace: true"
        return f"""\
apiVersion: cloned/v1
kind: Budget
metadata:
  name: {budget_name(index)}
  labels:
    team: {_team(index)}
    cost-center: cc-{index % 40:03d}
spec:
  description: Monthly spend cap for {_team(index)}
  scope:
    {scope}
  period: {("day", "week", "month")[index % 3]}
  limits:
    cost_usd: {50 + index % 20 * 25}.0
    tokens: {1_000_000 + index % 9 * 250_000}
    calls: {5_000 + index % 5 * 1_000}
    wall_seconds: 36000
  onExceed: {"requireApproval" if index % 2 else "block"}
"""

    def pipeline(self, index: int) -> str:
        verb = VERBS[index % len(VERBS)]
        first = connector_name((index * 3) % self.n_connectors)
        last = connector_name((index * 3 + 1) % self.n_connectors)
        budget = f"  budget: {budget_name(index % self.n_budgets)}\n" if self.n_budgets else ""
        limit = (
            """\
    limit:
      type: integer
      default: 50
      description: How many items to handle
"""
            if index % 2
            else ""
        )
        return f"""\
apiVersion: cloned/v1
kind: Pipeline
metadata:
  name: {pipeline_name(index)}
  labels:
    team: {_team(index)}
spec:
  description: {verb.title()} work items for {_team(index)}
{budget}  inputs:
    ticket:
      type: string
      required: true
    dry-run:
      type: boolean
      default: false
{limit}  steps:
    - name: fetch
      tool:
        connector: {first}
        name: {first.split("-")[0]}.get
      with:
        id: "${{inputs.ticket}}"
      timeoutSeconds: 60
    - name: {verb}
      skill: text.{verb}
      with:
        style: concise
        max-words: 200
    - name: publish
      description: Post the result where the team works
      tool:
        connector: {last}
        name: {last.split("-")[0]}.post
      gate:
        count: 1
        groups: [platform]
  outputs:
    result:
      from: steps.{verb}
      description: The {verb} result
"""

    def blueprint(self, index: int) -> str:
        return f"""\
apiVersion: cloned/v1
kind: Blueprint
metadata:
  name: bp-{_team(index)}-{index:05d}
  labels:
    team: {_team(index)}
spec:
  description: Starter kit for {_team(index)}
  source:
    path: blueprints/{VERBS[index % len(VERBS)]}.yaml
  parameters:
    team: {_team(index)}
    channels: [alerts, ops-{index % 7}]
    retries: {index % 5}
    notify:
      email: {_team(index)}@example.com
      onFailure: true
"""

    def run(self, index: int) -> str:
        pipeline = index % self.n_pipelines
        limit = f"    limit: {10 + index % 90}\n" if pipeline % 2 else ""
        return f"""\
apiVersion: cloned/v1
kind: Run
metadata:
  name: run-{_team(index)}-{index:06d}
  labels:
    team: {_team(index)}
    trigger: {("schedule", "manual", "webhook")[index % 3]}
  annotations:
    requested-by: alice@example.com
    ticket-url: https://tracker.example.com/T-{index}
spec:
  description: Scheduled run {index} of {pipeline_name(pipeline)}
  pipeline: {pipeline_name(pipeline)}
  inputs:
    ticket: T-{1000 + index}
    dry-run: {"true" if index % 4 == 0 else "false"}
{limit}"""


FOLDERS = {
    "PolicyPack": "policy",
    "SecretRef": "secrets",
    "Connector": "registry",
    "Budget": "budgets",
    "Pipeline": "pipelines",
    "Blueprint": "blueprints",
    "Run": "runs",
}


def render(total: int, seed: int = 7) -> dict[str, str]:
    """The files of a workspace of `total` resources: repository-relative path -> text."""
    counts = kind_counts(total)
    gen = Generator(counts)
    rng = random.Random(seed)
    files = {".cloned/workspace.yaml": gen.workspace()}
    makers: dict[str, Callable[[int], str]] = {
        "PolicyPack": gen.policy_pack,
        "SecretRef": gen.secret,
        "Connector": gen.connector,
        "Budget": gen.budget,
        "Pipeline": gen.pipeline,
        "Blueprint": gen.blueprint,
        "Run": gen.run,
    }
    for kind, make in makers.items():
        count = counts.get(kind, 0)
        folder = FOLDERS[kind]
        start = 0
        number = 0
        while start < count:
            size = count if kind == "PolicyPack" else rng.randint(5, 15)
            docs = [make(index) for index in range(start, min(start + size, count))]
            # Pipelines and runs are grouped by team in subfolders, like real repositories.
            sub = f"{_team(start)}/" if kind in ("Pipeline", "Run") else ""
            rel = f".cloned/{folder}/{sub}{folder}-{number:04d}.yaml"
            header = f"# {kind} resources, generated by tests/bench/bench.py\n"
            files[rel] = header + "---\n".join(docs)
            start += size
            number += 1
    return files


def create_workspace(root: Path, total: int, env: dict[str, str]) -> tuple[int, int, int]:
    """Write a committed git repository with a workspace of `total` resources.

    Returns (files, lines, bytes) of `.cloned/`.
    """
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root, env=env)
    files = render(total)
    lines = size = 0
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        lines += text.count("\n")
        size += len(text.encode())
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", f"Benchmark workspace: {total} resources", cwd=root, env=env)
    return len(files), lines, size


# --- timing ------------------------------------------------------------------------------------


def verify(cloned: Path, root: Path, env: dict[str, str], total: int) -> None:
    """The generated workspace validates, with every resource counted (also warms .pyc files)."""
    proc = subprocess.run(
        [str(cloned), "validate", "--no-cache", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: generated workspace {root} does not validate (exit {proc.returncode}):\n"
            f"{proc.stdout[:4000]}{proc.stderr[:4000]}"
        )
    found = json.loads(proc.stdout)["resources"]
    if found != total:
        raise SystemExit(f"bench: {root} holds {found} resources, expected {total}")


@dataclass
class SizeResult:
    """Every timing of one workspace size."""

    size: int
    files: int
    lines: int
    bytes: int
    kinds: dict[str, int]
    no_cache: Timing
    cold: Timing
    warm: Timing


def bench_size(
    total: int, work: Path, python: Path, env: dict[str, str], repeat: int, cold_repeat: int | None
) -> SizeResult:
    root = work / f"ws-{total}"
    files, lines, size = create_workspace(root, total, env)
    cloned = python.parent / "cloned"
    verify(cloned, root, env, total)
    validate = [str(cloned), "validate"]
    state = root / ".cloned" / "state"

    def drop_state() -> None:
        shutil.rmtree(state, ignore_errors=True)

    slow = cold_repeat if cold_repeat is not None else SLOW_REPEAT
    cold_runs = repeat if cold_repeat is None else cold_repeat
    no_cache = measure(
        "validate --no-cache",
        [*validate, "--no-cache"],
        cwd=root,
        env=env,
        repeat=cold_runs,
        slow_repeat=slow,
    )
    cold = measure(
        "validate, no state",
        validate,
        cwd=root,
        env=env,
        repeat=cold_runs,
        before=drop_state,
        slow_repeat=slow,
    )
    if not (state / "cache" / "resources.json").is_file():
        raise SystemExit(f"bench: validate wrote no cache under {state}")
    warm = measure(
        "validate, warm",
        validate,
        cwd=root,
        env=env,
        repeat=repeat,
        warm=WarmCache(state / "cache" / "resources.json"),
    )
    return SizeResult(total, files, lines, size, kind_counts(total), no_cache, cold, warm)


def import_times(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """`python -X importtime`: total of the top-level cumulative times, and the biggest ones."""
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    top: list[tuple[str, int]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
            top.append((name.strip(), int(cumulative)))
    top.sort(key=lambda item: -item[1])
    return {
        "total_ms": sum(us for _, us in top) / 1000,
        "top": [(name, us / 1000) for name, us in top[:6]],
    }


# --- report ------------------------------------------------------------------------------------


def report(
    results: list[SizeResult],
    base: SizeResult,
    python_pass: Timing,
    help_: Timing,
    repeat: int,
) -> str:
    out: list[str] = []
    add = out.append
    add(f"## `cloned validate` (median of up to {repeat} runs, wall ms)\n")
    add(
        "| resources | files | lines | MB | no-cache ms | cold ms | warm ms "
        "| cold µs/res | warm µs/res | no-cache µs/res | runs |"
    )
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in [base, *results]:
        per = (
            ("", "", "")
            if r is base
            else tuple(
                us((t.median - b.median) * 1000 / r.size)
                for t, b in ((r.cold, base.cold), (r.warm, base.warm), (r.no_cache, base.no_cache))
            )
        )
        add(
            f"| {r.size:,} | {r.files:,} | {r.lines:,} | {r.bytes / 1e6:.2f} "
            f"| {ms(r.no_cache.median)} | {ms(r.cold.median)} | {ms(r.warm.median)} "
            f"| {per[0]} | {per[1]} | {per[2]} "
            f"| {len(r.no_cache.samples)}/{len(r.cold.samples)}/{len(r.warm.samples)} |"
        )
    add("")
    add(
        "no-cache: `--no-cache` (parse + validate all, nothing written); cold: after deleting "
        ".cloned/state/ (parse + validate all, cache written); warm: cache populated. "
        "µs/res: (time - same command on the 1-resource workspace) / resources. "
        "runs: timed runs behind each median (no-cache/cold/warm)."
    )
    add("\n## Start-up\n")
    add("| command | ms |")
    add("| --- | ---: |")
    add(f"| `python -c pass` | {ms(python_pass.median)} |")
    add(f"| `cloned --help` | {ms(help_.median)} |")
    startup = help_.median - python_pass.median
    add(f"| difference (CLI start-up above the interpreter) | {ms(startup)} |")
    add(f"| `cloned validate` warm, 1 resource | {ms(base.warm.median)} |")
    add(f"| `cloned validate --no-cache`, 1 resource | {ms(base.no_cache.median)} |")
    if len(results) >= 2:
        add("\n## Linearity\n")
        add("(t(big) - t(1 resource)) / (t(small) - t(1 resource)); linear = size ratio.\n")
        add("| sizes | size ratio | no-cache | cold | warm |")
        add("| --- | ---: | ---: | ---: | ---: |")
        for small, big in itertools.pairwise(results):
            ratios = growth(base, small, big, ("no_cache", "cold", "warm"))
            add(
                f"| {small.size:,} → {big.size:,} | {big.size / small.size:.0f} "
                f"| {' | '.join(ratios)} |"
            )
    return "\n".join(out)


def imports_report(imports: dict[str, dict[str, Any]]) -> str:
    out = ["\n## `python -X importtime` (sum of top-level cumulative times)\n"]
    out.append("| command | total ms | biggest top-level imports (ms) |")
    out.append("| --- | ---: | --- |")
    for label, found in imports.items():
        biggest = ", ".join(f"{name} {value:.0f}" for name, value in found["top"])
        out.append(f"| {label} | {found['total_ms']:.0f} | {biggest} |")
    return "\n".join(out)


def source_state() -> str:
    """The commit measured, and whether Cloned's code or schemas differ from it."""

    def git_out(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git_out("rev-parse", "--short", "HEAD") or "unknown"
    changed = git_out("status", "--porcelain", "--", "reconciler", "schemas").splitlines()
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} + {len(changed)} uncommitted files in reconciler/ or schemas/"


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"sizes must be at least {MIN_SIZE}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=parse_sizes, default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument(
        "--cold-repeat",
        type=int,
        default=None,
        help=f"runs of each cold figure (default: --repeat, or {SLOW_REPEAT} "
        f"when a run takes over {SLOW_RUN_SECONDS:g} s)",
    )
    parser.add_argument(
        "--update-size",
        type=int,
        default=1000,
        help="the size whose budget-lowering apply is timed (default 1000; 0: none)",
    )
    parser.add_argument(
        "--no-plan", action="store_true", help="time validate only (no plan, apply, quickstart)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR, help="default: .bench/")
    parser.add_argument(
        "--python", type=Path, default=VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    python: Path = args.python
    cloned = python.parent / "cloned"
    if not cloned.exists():
        parser.error(f"no cloned console script next to {python}")
    work: Path = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = hermetic_env(work / "env")
    repeat: int = args.repeat
    plans: bool = not args.no_plan

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    machine = f"CPython {platform.python_version()} on {os.cpu_count()} CPUs"
    source = source_state()
    load_start = os.getloadavg()[0]
    progress(f"{python} ({machine}), Cloned at {source}, work in {work}")
    run_once([str(python), "-c", "pass"], work, env)  # warm the page cache
    run_once([str(cloned), "--help"], work, env)
    starts = max(repeat, 10)
    python_pass = measure(
        "python -c pass", [str(python), "-c", "pass"], cwd=work, env=env, repeat=starts
    )
    help_ = measure("cloned --help", [str(cloned), "--help"], cwd=work, env=env, repeat=starts)

    progress("1 resource (baseline)")
    base_repeat = max(repeat, 5)
    base = bench_size(1, work, python, env, base_repeat, None)
    base_life = bench_lifecycle(work / "ws-1", 1, cloned, env, base_repeat) if plans else None
    results = []
    lives: list[LifecycleResult] = []
    for total in args.sizes:
        progress(f"{total:,} resources: generate, verify, time validate")
        started = time.perf_counter()
        results.append(bench_size(total, work, python, env, repeat, args.cold_repeat))
        if plans:
            progress(f"{total:,} resources: time plan and apply")
            lives.append(
                bench_lifecycle(
                    work / f"ws-{total}",
                    total,
                    cloned,
                    env,
                    repeat,
                    with_updates=total == args.update_size,
                )
            )
        progress(f"{total:,} resources done in {time.perf_counter() - started:.1f} s")
    quickstart: QuickstartResult | None = None
    if plans:
        progress("examples/quickstart: plan next to python -c pass")
        quickstart = bench_quickstart(work, python, cloned, env, starts)

    biggest = work / f"ws-{args.sizes[-1]}"
    size = f"{args.sizes[-1]:,}"
    imports = {
        "`cloned --help`": import_times([str(python), str(cloned), "--help"], work, env),
        f"`cloned validate`, warm, {size}": import_times(
            [str(python), str(cloned), "validate"], biggest, env
        ),
    }
    if plans:
        imports[f"`cloned plan`, no-op, {size}"] = import_times(
            [str(python), str(cloned), "plan"], biggest, env
        )
        imports["`cloned plan`, no-op, quickstart"] = import_times(
            [str(python), str(cloned), "plan"], work / "quickstart", env
        )
    load = f"load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    print(f"# `make bench`, {time.strftime('%Y-%m-%d')}: {machine}\n")
    print(f"Cloned at {source}; {load} (1 min).\n")
    print(report(results, base, python_pass, help_, repeat))
    if base_life is not None:
        print(plan_apply_report(lives, base_life, quickstart, repeat))
    print(imports_report(imports))
    print()  # bench_audit.py follows in `make bench`
    if args.json is not None:
        payload = {
            "python": str(python),
            "python_version": platform.python_version(),
            "cpus": os.cpu_count(),
            "repeat": repeat,
            "python_pass_ms": python_pass.samples,
            "cloned_help_ms": help_.samples,
            "imports": imports,
            "sizes": [asdict(result) for result in [base, *results]],
            "plan_apply": [asdict(life) for life in ([base_life] if base_life else []) + lives],
            "quickstart": asdict(quickstart) if quickstart is not None else None,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        progress(f"raw results in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
