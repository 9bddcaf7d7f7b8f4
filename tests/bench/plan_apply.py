"""`cloned plan` and `cloned apply` figures of `make bench` (imported by `bench.py`).

On each generated workspace, after `bench.py` has timed `cloned validate` (so the validation
cache is filled: every figure here is warm):

- `cloned plan` with nothing applied yet (bootstrap: every managed resource is a create);
- `cloned apply` of that bootstrap, from an empty state each run (state database, audit key,
  `cloned.lock` and `.cloned/audit/` removed untimed before each run; the validation cache
  kept);
- `cloned plan` once everything is applied (a no-op plan);
- on one size (1,000 by default): `cloned apply` with nothing to do, and `cloned apply` of one
  budget-lowering update per Budget (lowering a limit applies automatically), each run from
  the same saved state.

And on `examples/quickstart`, copied into a fresh git repository: the first plan and, after
one apply, the no-op plan, each run interleaved with `python -c pass` so that both see the same
machine. Every plan is checked before it is timed (bootstrap, all creates, every decision
auto; no changes after apply), and every timed apply must exit 0.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timing import (
    SLOW_REPEAT,
    Timing,
    WarmCache,
    git,
    growth,
    measure,
    ms,
    run_json,
    run_once,
    run_warm,
    us,
)

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"

NOOP_PLAN_GOAL_MS = 1000.0
"""Goal: a no-op `cloned plan` of 10,000 resources, warm, under a second."""
NOOP_PLAN_GOAL_SIZE = 10_000
QUICKSTART_GOAL_MS = 250.0
"""Goal: `cloned plan` on the quickstart within 250 ms of `python -c pass`."""

STATE = Path(".cloned") / "state"
CACHE = STATE / "cache" / "resources.json"
APPLIED = (
    Path(".cloned") / "cloned.lock",
    Path(".cloned") / "audit",
    Path(".cloned") / "approvals",
)
"""What an apply writes outside `.cloned/state/`."""
KEEP_IN_STATE = ("cache", ".gitignore")
"""What survives `forget_applied`: the validation cache, so every figure stays warm."""

COST_LIMIT = re.compile(r"^(\s+cost_usd: )(\d+)\.0$", re.MULTILINE)
COST_CUT = 10
"""Each Budget's `cost_usd` goes down by this much (the smallest generated limit is 50)."""


@dataclass
class UpdateResult:
    """`cloned apply` with nothing to do, and of `changes` budget-lowering updates."""

    size: int
    changes: int
    apply_noop: Timing
    apply_updates: Timing


@dataclass
class LifecycleResult:
    """Plan and apply timings of one generated workspace."""

    size: int
    managed: int
    unmanaged: int
    plan_bootstrap: Timing
    apply_bootstrap: Timing
    plan_noop: Timing
    updates: UpdateResult | None = None


@dataclass
class QuickstartResult:
    """`cloned plan` on examples/quickstart next to `python -c pass`."""

    managed: int
    unmanaged: int
    python_pass: Timing = field(default_factory=lambda: Timing("python -c pass"))
    plan_bootstrap: Timing = field(default_factory=lambda: Timing("plan, bootstrap"))
    plan_noop: Timing = field(default_factory=lambda: Timing("plan, no-op"))


# --- state handling ----------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _move_branch(root: Path, commit: str) -> None:
    """Point the branch (and the index) at `commit`, leaving the working tree as it is: the
    history then says exactly what the restored files say, as apply's history check wants."""
    _git(root, "reset", "-q", commit)


def forget_applied(root: Path) -> None:
    """Back to nothing applied: drop what apply wrote (its audit commits included), keep the
    validation cache."""
    _move_branch(root, _git(root, "rev-list", "--max-parents=0", "HEAD"))
    state = root / STATE
    if state.is_dir():
        for entry in state.iterdir():
            if entry.name not in KEEP_IN_STATE:
                _remove(entry)
    for rel in APPLIED:
        _remove(root / rel)


def save_state(root: Path, dest: Path) -> None:
    """Copy the state folder and what apply wrote (lock, audit, approvals) to `dest`."""
    _remove(dest)
    dest.mkdir(parents=True)
    (dest / "HEAD").write_text(_git(root, "rev-parse", "HEAD"))
    for rel in (STATE, *APPLIED):
        source = root / rel
        if source.is_dir():
            shutil.copytree(source, dest / rel)
        elif source.exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def restore_state(root: Path, saved: Path) -> None:
    """Put back exactly what `save_state` saved, the branch's commit included."""
    _move_branch(root, (saved / "HEAD").read_text())
    for rel in (STATE, *APPLIED):
        _remove(root / rel)
        source = saved / rel
        if source.is_dir():
            shutil.copytree(source, root / rel)
        elif source.exists():
            shutil.copy2(source, root / rel)


def refresh_cache(root: Path, saved: Path) -> None:
    """After a cache miss, give `saved` the cache the missing run just wrote."""
    shutil.copy2(root / CACHE, saved / CACHE)


def lower_budgets(root: Path) -> int:
    """Lower every Budget's cost limit by `COST_CUT` in the YAML; the number of budgets changed."""
    changed = 0
    for path in sorted((root / ".cloned" / "budgets").rglob("*.yaml")):
        text, count = COST_LIMIT.subn(lambda m: f"{m[1]}{int(m[2]) - COST_CUT}.0", path.read_text())
        path.write_text(text)
        changed += count
    return changed


# --- checks ------------------------------------------------------------------------------------


def check_plan(
    cloned: Path, root: Path, env: dict[str, str], *, bootstrap: bool, action: str, changes: int
) -> dict[str, Any]:
    """`cloned plan --json`, required to hold `changes` changes of `action`, all auto."""
    plan: dict[str, Any] = run_json([str(cloned), "plan", "--json"], root, env)
    summary = plan["summary"]
    wrong = []
    if plan["bootstrap"] is not bootstrap:
        wrong.append(f"bootstrap is {plan['bootstrap']}, expected {bootstrap}")
    if changes >= 0 and len(plan["changes"]) != changes:
        wrong.append(f"{len(plan['changes'])} changes, expected {changes}")
    if summary.get(action, 0) != len(plan["changes"]):
        wrong.append(f"not every change is a {action}: {summary}")
    if summary["auto"] != len(plan["changes"]):
        wrong.append(f"not every change applies automatically: {summary}")
    if wrong:
        raise SystemExit(f"bench: unexpected plan in {root}: " + "; ".join(wrong))
    return plan


def check_converged(cloned: Path, root: Path, env: dict[str, str]) -> None:
    """After an apply, the plan is empty."""
    check_plan(cloned, root, env, bootstrap=False, action="update", changes=0)


# --- generated workspaces ----------------------------------------------------------------------


def bench_lifecycle(
    root: Path,
    total: int,
    cloned: Path,
    env: dict[str, str],
    repeat: int,
    *,
    with_updates: bool = False,
) -> LifecycleResult:
    """Plan (bootstrap), apply (bootstrap), plan (no-op) on a workspace with a warm cache."""
    forget_applied(root)
    first = check_plan(cloned, root, env, bootstrap=True, action="create", changes=-1)
    managed, unmanaged = len(first["changes"]), len(first["unmanaged"])
    if managed + unmanaged != total:
        raise SystemExit(f"bench: {root}: {managed} managed + {unmanaged} others != {total}")
    plan = [str(cloned), "plan"]
    apply = [str(cloned), "apply"]
    warm = WarmCache(root / CACHE)
    plan_bootstrap = measure(
        "plan, bootstrap",
        plan,
        cwd=root,
        env=env,
        repeat=repeat,
        slow_repeat=SLOW_REPEAT,
        warm=warm,
    )
    apply_bootstrap = measure(
        "apply, bootstrap",
        apply,
        cwd=root,
        env=env,
        repeat=repeat,
        before=lambda: forget_applied(root),
        slow_repeat=SLOW_REPEAT,
        warm=warm,
    )
    check_converged(cloned, root, env)
    plan_noop = measure(
        "plan, no-op",
        plan,
        cwd=root,
        env=env,
        repeat=repeat,
        slow_repeat=SLOW_REPEAT,
        warm=warm,
    )
    result = LifecycleResult(total, managed, unmanaged, plan_bootstrap, apply_bootstrap, plan_noop)
    if with_updates:
        result.updates = bench_updates(root, total, cloned, env, repeat)
    return result


def bench_updates(
    root: Path, total: int, cloned: Path, env: dict[str, str], repeat: int
) -> UpdateResult:
    """A no-op apply, then an apply lowering every budget; the workspace is left as found."""
    applied = root.parent / f"{root.name}.applied"
    ready = root.parent / f"{root.name}.lowered"
    apply = [str(cloned), "apply"]
    save_state(root, applied)
    apply_noop = measure(
        "apply, no-op",
        apply,
        cwd=root,
        env=env,
        repeat=repeat,
        before=lambda: restore_state(root, applied),
        warm=WarmCache(root / CACHE, on_miss=lambda: refresh_cache(root, applied)),
    )
    restore_state(root, applied)
    changes = lower_budgets(root)
    try:
        run_once([str(cloned), "validate"], root, env)  # the cache learns the edited files
        check_plan(cloned, root, env, bootstrap=False, action="update", changes=changes)
        save_state(root, ready)
        apply_updates = measure(
            "apply, budget updates",
            apply,
            cwd=root,
            env=env,
            repeat=repeat,
            before=lambda: restore_state(root, ready),
            slow_repeat=SLOW_REPEAT,
            warm=WarmCache(root / CACHE, on_miss=lambda: refresh_cache(root, ready)),
        )
        check_converged(cloned, root, env)
    finally:
        git("checkout", "--", ".cloned/budgets", cwd=root, env=env)
        restore_state(root, applied)
        _remove(applied)
        _remove(ready)
    return UpdateResult(total, changes, apply_noop, apply_updates)


# --- the quickstart ----------------------------------------------------------------------------


def bench_quickstart(
    work: Path, python: Path, cloned: Path, env: dict[str, str], repeat: int
) -> QuickstartResult:
    """examples/quickstart in a fresh repository: first plan, apply, no-op plan."""
    root = work / "quickstart"
    _remove(root)
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns("state"))
    git("init", "-q", "-b", "main", cwd=root, env=env)
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", "Quickstart workspace", cwd=root, env=env)
    run_once([str(cloned), "validate"], root, env)  # fills the validation cache
    first = check_plan(cloned, root, env, bootstrap=True, action="create", changes=-1)
    result = QuickstartResult(len(first["changes"]), len(first["unmanaged"]))
    bare = [str(python), "-c", "pass"]
    plan = [str(cloned), "plan"]
    warm = WarmCache(root / CACHE)

    def interleaved(timing: Timing) -> None:
        while len(timing.samples) < repeat:
            sample = run_warm(plan, root, env, warm)
            if sample is not None:
                result.python_pass.samples.append(run_once(bare, root, env))
                timing.samples.append(sample)

    interleaved(result.plan_bootstrap)
    run_once([str(cloned), "apply"], root, env)
    check_converged(cloned, root, env)
    interleaved(result.plan_noop)
    return result


# --- report ------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _runs(*timings: Timing) -> str:
    return "/".join(str(len(t.samples)) for t in timings)


def _per_second(count: int, millis: float) -> str:
    return f"{count / millis * 1000:,.0f}" if millis > 0 else "n/a"


def report(
    results: Sequence[LifecycleResult],
    base: LifecycleResult,
    quickstart: QuickstartResult | None,
    repeat: int,
) -> str:
    out: list[str] = []
    add = out.append
    add(f"\n## `cloned plan` (warm, median of up to {repeat} runs, wall ms)\n")
    add(
        "| resources | managed | not managed | bootstrap plan ms | no-op plan ms "
        "| bootstrap µs/res | no-op µs/res | runs |"
    )
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in [base, *results]:
        per = ("", "")
        if r is not base:
            per = (
                us((r.plan_bootstrap.median - base.plan_bootstrap.median) * 1000 / r.size),
                us((r.plan_noop.median - base.plan_noop.median) * 1000 / r.size),
            )
        add(
            f"| {r.size:,} | {r.managed:,} | {r.unmanaged:,} "
            f"| {ms(r.plan_bootstrap.median)} | {ms(r.plan_noop.median)} "
            f"| {per[0]} | {per[1]} | {_runs(r.plan_bootstrap, r.plan_noop)} |"
        )
    add("")
    add(
        "managed: Workspace, PolicyPack, Budget, SecretRef and Connector (each installing the "
        "builtin notes); not managed: Pipelines, Blueprints and Runs (validated, listed as "
        "not managed yet). bootstrap: nothing applied, every managed resource a create; no-op: "
        "after `cloned apply`, nothing to change. Both with the validation cache filled. "
        "µs/res: (time - same command on the 1-resource workspace) / resources (all kinds). "
        "runs: timed runs behind each median (bootstrap/no-op)."
    )

    add(f"\n## `cloned apply` (median of up to {repeat} runs, wall ms)\n")
    add(
        "| resources | changes | apply ms | changes/s, whole process "
        "| marginal µs/change | marginal changes/s | runs |"
    )
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in [base, *results]:
        t = r.apply_bootstrap.median
        marginal = ("", "")
        if r is not base and r.managed > base.managed:
            per_change = (t - base.apply_bootstrap.median) * 1000 / (r.managed - base.managed)
            marginal = (us(per_change), f"{1e6 / per_change:,.0f}" if per_change > 0 else "n/a")
        add(
            f"| {r.size:,} | {r.managed:,} create{'s' if r.managed != 1 else ''} | {ms(t)} "
            f"| {_per_second(r.managed, t)} "
            f"| {marginal[0]} | {marginal[1]} | {_runs(r.apply_bootstrap)} |"
        )
    for r in results:
        u = r.updates
        if u is None:
            continue
        t = u.apply_updates.median
        per_change = (t - u.apply_noop.median) * 1000 / u.changes if u.changes else float("nan")
        add(
            f"| {u.size:,} | {u.changes:,} budget updates | {ms(t)} "
            f"| {_per_second(u.changes, t)} | {us(per_change)} "
            f"| {f'{1e6 / per_change:,.0f}' if per_change > 0 else 'n/a'} "
            f"| {_runs(u.apply_updates)} |"
        )
        add(
            f"| {u.size:,} | 0 (no-op apply) | {ms(u.apply_noop.median)} | | | "
            f"| {_runs(u.apply_noop)} |"
        )
    add("")
    add(
        "creates: the bootstrap apply from an empty state (one transaction and one audit event "
        "per change, then cloned.lock and the signed audit segment written). marginal: "
        "(time - apply of the 1-resource workspace) / (changes - 1) for creates; "
        "(time - no-op apply of the same workspace) / changes for budget updates (each "
        "lowers `spec.limits.cost_usd`, auto under policy). changes/s, whole process: changes "
        "/ apply time, start-up and planning included."
    )

    if len(results) >= 2:
        add("\n## Linearity of plan and apply\n")
        add("(t(big) - t(1 resource)) / (t(small) - t(1 resource)); linear = size ratio.\n")
        add("| sizes | size ratio | managed ratio | bootstrap plan | no-op plan | apply |")
        add("| --- | ---: | ---: | ---: | ---: | ---: |")
        for small, big in itertools.pairwise(results):
            ratios = growth(base, small, big, ("plan_bootstrap", "plan_noop", "apply_bootstrap"))
            add(
                f"| {small.size:,} → {big.size:,} | {big.size / small.size:.0f} "
                f"| {big.managed / small.managed:.1f} | {' | '.join(ratios)} |"
            )

    if quickstart is not None:
        q = quickstart
        bare = q.python_pass.median
        runs = len(q.plan_noop.samples)
        add(f"\n## `cloned plan` on examples/quickstart (median of {runs} runs each, wall ms)\n")
        add("| command | ms | above `python -c pass` |")
        add("| --- | ---: | ---: |")
        add(f"| `python -c pass` (interleaved with the plans) | {ms(bare)} | |")
        add(
            f"| `cloned plan`, first (bootstrap, {q.managed} creates) "
            f"| {ms(q.plan_bootstrap.median)} | {ms(q.plan_bootstrap.median - bare)} |"
        )
        add(
            f"| `cloned plan`, no-op (after `cloned apply`) "
            f"| {ms(q.plan_noop.median)} | {ms(q.plan_noop.median - bare)} |"
        )
        add("")
        add(
            f"The quickstart holds {q.managed + q.unmanaged} resources ({q.managed} managed); "
            "its validation cache is filled before timing."
        )

    add("\n## Goals (plan and start-up)\n")
    goal = next((r for r in results if r.size == NOOP_PLAN_GOAL_SIZE), None)
    if goal is not None:
        noop = goal.plan_noop.median
        add(
            f"- No-op `cloned plan` of {NOOP_PLAN_GOAL_SIZE:,} resources, warm, under "
            f"{NOOP_PLAN_GOAL_MS:,.0f} ms: {ms(noop)} ms, {_met(noop < NOOP_PLAN_GOAL_MS)}."
        )
    else:
        add(f"- No-op plan of {NOOP_PLAN_GOAL_SIZE:,} resources: not measured (see --sizes).")
    if quickstart is not None:
        bare = quickstart.python_pass.median
        for label, timing in (
            ("no-op", quickstart.plan_noop),
            ("first", quickstart.plan_bootstrap),
        ):
            above = timing.median - bare
            add(
                f"- `cloned plan` ({label}) on the quickstart within {QUICKSTART_GOAL_MS:.0f} ms "
                f"of `python -c pass`: {ms(above)} ms above, {_met(above <= QUICKSTART_GOAL_MS)}."
            )
    return "\n".join(out)
