"""Benchmark of the audit log (`make bench`, after bench.py).

Measures, on a fresh state database in a temporary folder:

- append: events/s with one transaction per event (each event its own apply step) and with
  1,000 events per transaction (a batch of steps);
- export: writing all events to a segment and signing one checkpoint;
- verify: events/s of the database chain alone, of the committed segments alone (a fresh clone,
  no database), and of the whole `verify()` (database + segments + checkpoints);
- `cloned audit verify` as a whole process (start-up included).

Events look like the apply engine's `change.applied`: about 480 bytes of canonical JSON, each
passed through a redactor with one registered secret and one pattern. Run it with the project's
interpreter: `.venv/bin/python tests/bench/bench_audit.py [--events 100000] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from reconciler.audit import append, export, verify  # noqa: E402
from reconciler.audit.chain import verify_rows, verify_segments  # noqa: E402
from reconciler.audit.files import list_segments  # noqa: E402
from reconciler.redact import Redactor  # noqa: E402
from reconciler.state import audit_rows  # noqa: E402
from reconciler.state.db import StateDB  # noqa: E402

CLONED = Path(sys.executable).parent / "cloned"
VERIFY_GOAL = 100_000
"""Goal: audit verify over 100,000 events/s."""


def payload(index: int) -> dict[str, Any]:
    """A change.applied payload of realistic size."""
    return {
        "address": f"budget.team-{index % 97:02d}",
        "action": "update",
        "change_hash": "sha256:" + f"{index:064x}",
        "plan_id": "sha256:" + "ab" * 32,
        "diff": [
            {"path": "spec.limits.cost_usd", "before": 50, "after": 50 + index % 50},
            {"path": "spec.limits.tokens", "before": 2_000_000, "after": 2_500_000},
        ],
        "decision": "auto",
        "risk": "low",
    }


def redactor() -> Redactor:
    found = Redactor([r"ghp_[A-Za-z0-9]{36}"])
    found.register("bench-secret-value")
    return found


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def append_each(db: StateDB, count: int, mask: Redactor) -> None:
    for index in range(count):
        with db.transaction() as connection:
            append(
                connection,
                actor="alice",
                type="change.applied",
                subject=f"budget.team-{index % 97:02d}",
                payload=payload(index),
                redactor=mask,
            )


def append_batched(db: StateDB, count: int, mask: Redactor, batch: int = 1000) -> None:
    for start in range(0, count, batch):
        with db.transaction() as connection:
            for index in range(start, min(count, start + batch)):
                append(
                    connection,
                    actor="alice",
                    type="change.applied",
                    subject=f"budget.team-{index % 97:02d}",
                    payload=payload(index),
                    redactor=mask,
                )


def run(events: int, single: int) -> list[tuple[str, int, float]]:
    rows: list[tuple[str, int, float]] = []
    mask = redactor()
    with tempfile.TemporaryDirectory(prefix="cloned-bench-audit-") as folder:
        root = Path(folder)
        (root / ".cloned").mkdir()
        db = StateDB.open(root)
        assert db is not None
        rows.append(
            (
                "append, one transaction per event",
                single,
                timed(lambda: append_each(db, single, mask)),
            )
        )
        rest = events - single
        rows.append(
            (
                "append, 1,000 events per transaction",
                rest,
                timed(lambda: append_batched(db, rest, mask)),
            )
        )
        rows.append(
            ("export (one segment + signed checkpoint)", events, timed(lambda: export(db, root)))
        )
        chain = timed(lambda: verify_rows(audit_rows.scan(db.reader)))
        rows.append(("verify: state database chain", events, chain))
        segments, _ = list_segments(root)
        rows.append(
            (
                "verify: committed segments (no database)",
                events,
                timed(lambda: verify_segments(root, segments, None)),
            )
        )
        report = None

        def whole() -> None:
            nonlocal report
            report = verify(root, db)

        rows.append(("verify: database + segments + checkpoints", events, timed(whole)))
        assert report is not None and report.ok, report
        db.close()
        env = {**os.environ, "NO_COLOR": "1"}
        start = time.perf_counter()
        done = subprocess.run(
            [str(CLONED), "audit", "verify", str(root)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        rows.append(("`cloned audit verify` process", events, time.perf_counter() - start))
        assert done.returncode == 0, done.stderr
    return rows


def table(rows: list[tuple[str, int, float]]) -> str:
    lines = ["| operation | events | seconds | events/s |", "| --- | ---: | ---: | ---: |"]
    for name, count, seconds in rows:
        lines.append(f"| {name} | {count:,} | {seconds:.3f} | {count / seconds:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000, help="events in the log")
    parser.add_argument(
        "--single", type=int, default=5_000, help="of which appended one per transaction"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    rows = run(args.events, min(args.single, args.events))
    print("## Audit log (`bench_audit.py`: in-process, one run each, wall time)\n")
    print(table(rows))
    print(
        f"\n{args.events:,} change.applied events of about 480 bytes in a fresh state database "
        "(WAL) in a temporary folder, each through a redactor. The last row is a whole "
        "`cloned audit verify` process, start-up included."
    )
    print("\n## Goals (audit)\n")
    for name, count, seconds in rows:
        if name.startswith("verify:") or name.startswith("`cloned audit verify`"):
            rate = count / seconds
            met = "**met**" if rate > VERIFY_GOAL else "**not met**"
            print(f"- {name}: {rate:,.0f} events/s against over {VERIFY_GOAL:,} events/s, {met}.")
    if args.json:
        args.json.write_text(
            json.dumps([{"operation": n, "events": c, "seconds": s} for n, c, s in rows], indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
