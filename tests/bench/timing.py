"""Process timing helpers shared by `bench.py` and `plan_apply.py` (`make bench`).

Standard library only. Every timed command runs as a whole process in a hermetic environment:
no user git configuration, HOME and CLONED_HOME inside the benchmark's work folder.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLOW_RUN_SECONDS = 2.0
"""A cold run slower than this is repeated at most `SLOW_REPEAT` times (unless --cold-repeat)."""
SLOW_REPEAT = 3
MAX_CACHE_MISSES = 5
"""How many timed runs may miss the validation cache before the benchmark gives up."""


# The bench workspaces' one approver (its private half is not needed: benches only bootstrap).
PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP14W5IVBeT5CFPOBVA+0aS3LQQIgNLNQT3/opUerjda alice"
)
WORKSPACE = f"""\
apiVersion: cloned/v1
kind: Workspace
metadata: {{name: bench}}
spec:
  approvers: [{{name: alice, publicKey: "{PUBLIC_KEY}", groups: [admins]}}]
"""


def git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def hermetic_env(home: Path) -> dict[str, str]:
    """The environment of every timed command: no user git config, a private CLONED_HOME."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "CLONED_", "XDG_", "PYTHON"))
    }
    (home / "home").mkdir(parents=True, exist_ok=True)
    (home / "cloned-home").mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home / "home"),
        CLONED_HOME=str(home / "cloned-home"),
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Bench Author",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench Author",
        GIT_COMMITTER_EMAIL="bench@example.com",
        NO_COLOR="1",
    )
    return env


@dataclass
class Timing:
    """Wall-clock samples of one command, in milliseconds."""

    label: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    """Milliseconds of one run of `argv`; fails loudly when the command does."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} exited {proc.returncode} in {cwd}:\n"
            + proc.stderr.decode(errors="replace")
        )
    return elapsed


def run_json(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> Any:
    """The JSON a command prints (untimed); fails loudly unless it exits 0."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} exited {proc.returncode} in {cwd}:\n"
            f"{proc.stdout[:4000]}{proc.stderr[:4000]}"
        )
    return json.loads(proc.stdout)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of `path`, None when it is missing: changes when it is rewritten."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)


@dataclass
class WarmCache:
    """Keeps "warm" figures warm.

    A run that rewrites the validation cache (`path`) missed it: Cloned saves the cache only
    when an entry was added or dropped, e.g. when its fingerprint (the Cloned version and the
    schemas) changed because someone edited `schemas/` while the benchmark ran. Such a run is
    discarded and `on_miss` (if any) refreshes whatever the next run restores the cache from.
    """

    path: Path
    on_miss: Callable[[], None] | None = None
    misses: int = 0


def run_warm(argv: Sequence[str], cwd: Path, env: dict[str, str], warm: WarmCache) -> float | None:
    """Milliseconds of one run of `argv`, or None when it missed the validation cache."""
    stamp = file_stamp(warm.path)
    elapsed = run_once(argv, cwd, env)
    if file_stamp(warm.path) == stamp:
        return elapsed
    warm.misses += 1
    print(
        f"bench: warning: `{' '.join(Path(a).name for a in argv[:2])} {' '.join(argv[2:])}` "
        f"rewrote {warm.path} (a cache miss); run discarded",
        file=sys.stderr,
        flush=True,
    )
    if warm.misses > MAX_CACHE_MISSES:
        raise SystemExit(
            f"bench: the validation cache {warm.path} keeps being invalidated; is something "
            "rewriting schemas/ or reconciler/ while the benchmark runs?"
        )
    if warm.on_miss is not None:
        warm.on_miss()
    return None


def measure(
    label: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    repeat: int,
    before: Callable[[], None] | None = None,
    slow_repeat: int | None = None,
    warm: WarmCache | None = None,
) -> Timing:
    """`repeat` timed runs (`before` runs untimed ahead of each); fewer when a run is slow.

    With `warm`, runs that miss the validation cache are discarded and run again.
    """
    timing = Timing(label)
    limit = repeat
    while len(timing.samples) < limit:
        if before is not None:
            before()
        if warm is None:
            timing.samples.append(run_once(argv, cwd, env))
        else:
            sample = run_warm(argv, cwd, env, warm)
            if sample is None:
                continue
            timing.samples.append(sample)
        if slow_repeat is not None and timing.samples[0] > SLOW_RUN_SECONDS * 1000:
            limit = min(repeat, slow_repeat)
    return timing


def ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def us(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def growth(base: Any, small: Any, big: Any, modes: Sequence[str]) -> list[str]:
    """(t(big) - t(base)) / (t(small) - t(base)) per mode: the linearity ratio, as text."""
    ratios = []
    for mode in modes:
        fixed = getattr(base, mode).median
        below = getattr(small, mode).median - fixed
        above = getattr(big, mode).median - fixed
        ratios.append(f"{above / below:.2f}" if below > 0 else "n/a")
    return ratios
