"""Benchmark of the redactor (`make bench`): what masking costs per megabyte of output as the
number of registered secrets grows.

One megabyte of log-like output (JSON-ish lines, a few of them carrying a registered value or
its base64), masked with 0, 1, 10, 100 and 1,000 registered values (random 32-character values,
each with its encodings: about 25 forms a value) and the baseline policy's kind of pattern:

- `text`: the whole megabyte in one `Redactor.text` call (a plan, a lock file);
- `lines`: line by line with `remember=False` (a connector's stderr log);
- `stream`: written line by line into a `RedactingStream` (the CLI's stdout).

For comparison, `alternation` is the redactor before issue 13: one regular expression of the
plain values joined with `|` (no encodings), whose cost grows with every value.

Goal (issue 13): linear in the output, not in the values: the 1,000-value cost within a small
factor of the 1-value one (reported as the ratio).

    python tests/bench/bench_redact.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.redact import RedactingStream, Redactor

COUNTS = (0, 1, 10, 100, 1000)
PATTERNS = [r"sk-[A-Za-z0-9]{20}"]


def values(count: int, rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(count)]


def output(secrets: list[str], rng: random.Random) -> list[str]:
    """About 1 MB of lines; one line in 200 holds a secret, plain or base64."""
    lines, size, n = [], 0, 0
    while size < 1_000_000:
        n += 1
        line = json.dumps({"seq": n, "tool": "notes__search", "query": f"term {n}", "ok": True})
        if secrets and n % 200 == 0:
            secret = rng.choice(secrets)
            line += f" token={secret}" if n % 400 else f" auth={base64.b64encode(secret.encode())}"
        lines.append(line + "\n")
        size += len(line) + 1
    return lines


def best_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    work()  # warm-up (builds the automaton)
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def modes(
    redactor: Redactor, lines: list[str], plain: list[str]
) -> dict[str, Callable[[], object]]:
    whole = "".join(lines)

    def stream() -> None:
        sink = RedactingStream(io.StringIO(), redactor)
        for line in lines:
            sink.write(line)
        sink.release()

    found: dict[str, Callable[[], object]] = {
        "text": lambda: redactor.text(whole, remember=False),
        "lines": lambda: [redactor.text(line, remember=False) for line in lines],
        "stream": stream,
    }
    if plain:
        longest_first = sorted(plain, key=len, reverse=True)
        combined = re.compile("|".join(re.escape(value) for value in longest_first))
        found["alternation"] = lambda: combined.sub("[REDACTED]", whole)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(13)
    secrets = values(max(COUNTS), rng)
    report: dict[str, dict[str, float]] = {}
    for count in COUNTS:
        redactor = Redactor(PATTERNS)
        for secret in secrets[:count]:
            redactor.register(secret)
        lines = output(secrets[:count], rng)
        megabytes = sum(map(len, lines)) / 1_000_000
        masked = redactor.text("".join(lines), remember=False)
        assert not any(secret in masked for secret in secrets[:count])
        timed = modes(redactor, lines, secrets[:count])
        report[str(count)] = {
            name: round(best_ms(work, args.rounds) / megabytes, 1) for name, work in timed.items()
        }
    print("redactor, median ms per MB of output, by registered values (with encodings):")
    names = ["text", "lines", "stream", "alternation"]
    print(f"  {'values':>7} " + " ".join(f"{name:>12}" for name in names))
    for count, row in report.items():
        cells = " ".join(f"{row[name]:12.1f}" if name in row else f"{'-':>12}" for name in names)
        print(f"  {count:>7} {cells}")
    ratios = {name: round(report["1000"][name] / report["1"][name], 2) for name in report["1"]}
    print("  1000 vs 1: " + ", ".join(f"{name} x{ratio}" for name, ratio in ratios.items()))
    worst = max(ratios[name] for name in ("text", "lines", "stream"))
    verdict = "met" if worst < 3 else "MISSED"
    print(f"  goal: linear in output, not per value (1000 vs 1 under x3): {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"ms_per_mb": report, "ratio_1000_vs_1": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
