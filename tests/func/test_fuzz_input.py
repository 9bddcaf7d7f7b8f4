"""Fuzz `cloned validate` and `cloned plan` with generated and mutated input (issue 8).

A seeded generator of our own (no new dependency, the same cases on every run): valid documents
of every kind, then mutated as text (spans cut, doubled or spliced with YAML punctuation, tabs,
control characters, tags, anchors, huge and non-finite numbers, deep nesting) or as data (a node
replaced by an odd value), and approval record files mutated the same way. Each case runs the
real CLI in-process and must end in a documented exit code, with no traceback or "internal
error", and every problem line located (`path[:line:col]: message`).

The short run is part of `make test` (a few seconds); `pytest -m fuzz` runs the long one.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import reconciler.redact
from reconciler.cli.main import run
from tests.conftest import PUBLIC_KEY, WORKSPACE_YAML, git, write

BASE_DOCUMENTS = [
    WORKSPACE_YAML,
    """\
apiVersion: cloned/v1
kind: Budget
metadata:
  name: monthly
  labels: {team: research}
spec:
  description: Research spend
  scope: {workspace: true}
  period: month
  limits: {cost_usd: 50.5, tokens: 2000000, calls: 5000, wall_seconds: 3600}
  onExceed: block
""",
    """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: github}
spec:
  source: {path: connectors/github}
  version: 1.2.3
  publisher: acme
  tools: {allow: [search, fetch], deny: [delete]}
  egress: {allowHosts: [api.github.com, "*.example.com:443"]}
  secrets: [github-token]
  limits: {ratePerMinute: 30, timeoutSeconds: 12.5, concurrency: 2}
  sandbox: {profile: strict}
""",
    """\
apiVersion: cloned/v1
kind: SecretRef
metadata: {name: github-token}
spec:
  ref: vault://github-token
  usedBy: {connectors: [github], pipelines: [triage]}
""",
    """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: house}
spec:
  extends: baseline
  rules:
    - name: big-raise
      match:
        kinds: [Budget]
        fields: ["spec.limits.*"]
        increase: {percentOver: 20}
        where: [{field: spec.description, matches: "^Research"}]
      decision: approval
      approvals: {count: 2, groups: [admins], distinct: true}
  egress: {allowHosts: [api.github.com], denyHosts: [evil.example]}
  tools: {deny: ["*.delete_*"], requireApproval: [post]}
  redaction:
    - {name: github, regex: "gh[pousr]_[A-Za-z0-9]{36}"}
  rateLimits: {callsPerMinute: 60}
""",
    """\
apiVersion: cloned/v1
kind: Pipeline
metadata: {name: triage}
spec:
  inputs:
    repo: {type: string, required: true}
    depth: {type: integer, default: 3}
  budget: monthly
  steps:
    - name: fetch
      tool: {connector: github, name: fetch}
      with: {repo: "{{ inputs.repo }}", depth: 3}
      timeoutSeconds: 30
    - name: summarise
      skill: research.summarize
      with: {topic: "${inputs.repo}", sources: ["${steps.fetch.output}"]}
      gate: {count: 1, groups: [admins]}
  outputs:
    report: {from: steps.summarise}
""",
    """\
apiVersion: cloned/v1
kind: Model
metadata: {name: default}
spec: {api: openai-chat, baseUrl: "http://127.0.0.1:8000/v1", model: local}
""",
    """\
apiVersion: cloned/v1
kind: Run
metadata: {name: nightly}
spec:
  pipeline: triage
  inputs: {repo: acme/app, depth: 2}
""",
    """\
apiVersion: cloned/v1
kind: Blueprint
metadata: {name: starter}
spec:
  source: {path: blueprints/starter}
  parameters: {size: 3, ratio: 0.5, tags: [a, b], nested: {deep: [1, {x: null}]}}
""",
]

TOKENS = [
    "[", "]", "{", "}", ",", ":", ": ", "- ", "? ", "&a ", "*a", "<<: *a\n",
    "!!python/object:os.system ", "!custom ", "!!binary ", "!!set ", "%YAML 1.1\n", "---\n",
    "...\n", "|\n", ">-\n", "#", '"', "'", "\t", "\x00", "\x07", "\ufeff", "\u2028", "\ud7ff",
    "é", "😀", "\\", "\n", "\r\n", "  ", "    ", ".inf", "-.inf", ".nan", "1e400", "-1e400",
    "0x1F", "0o17", "1_000", "-0", "1e-400", "2026-01-01",
    "null", "~", "true", "no", "on", "yes", "=", "<<", "*", "&", "@", "`", "%", "!", "|+", ">2",
    "9" * 400, "a" * 5000, "[" * 70, "{a: " * 70, "- " * 70, "[" * 3000, "&x [*x]", "*undefined",
]  # fmt: skip

ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**70, 1.5, -0.0, 1e308, "", " ", "x" * 300, "UPPER", "a b",
    "vault://", "ssh-ed25519 AAAA", [], {}, [None], {"": 1}, {"x": {"y": {"z": []}}},
    "baseline", "strict", "*", "sk-(", "z*", "(a+)+", "Budget", "update", "../../etc/passwd",
]  # fmt: skip

LOCATED = re.compile(r"^\.cloned[^:]*(:\d+:\d+)?: \S")
SUMMARY = re.compile(r"^Error: \d+ problems? found; nothing was written$")


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`cloned ARGS` in-process in `root`, with a fresh process redactor (a case's own
    redaction patterns must not mask the next case's locations)."""
    reconciler.redact._ACTIVE = reconciler.redact.Redactor()
    out, err = io.StringIO(), io.StringIO()
    with chdir(root), redirect_stdout(out), redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def mutate_text(rng: random.Random, text: str) -> str:
    """`text` with one to four random edits."""
    for _ in range(rng.randint(1, 4)):
        if not text:
            text = rng.choice(TOKENS)
            continue
        at = rng.randrange(len(text) + 1)
        end = min(len(text), at + rng.randint(0, 40))
        edit = rng.randrange(6)
        if edit == 0:
            text = text[:at] + text[end:]
        elif edit == 1:
            text = text[:at] + text[at:end] * rng.randint(2, 5) + text[at:]
        elif edit == 2:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif edit == 3:
            text = text[:at] + rng.choice(TOKENS) + text[end:]
        elif edit == 4:
            lines = text.splitlines(keepends=True)
            rng.shuffle(lines) if len(lines) < 4 else lines.insert(
                rng.randrange(len(lines)), lines.pop(rng.randrange(len(lines)))
            )
            text = "".join(lines)
        else:
            lines = text.splitlines(keepends=True)
            index = rng.randrange(len(lines))
            lines[index] = " " * rng.randint(0, 9) + lines[index].lstrip(" ")
            text = "".join(lines)
    return text


def mutate_data(rng: random.Random, data: Any, depth: int = 0) -> Any:
    """`data` with one node replaced by an odd value (or wrapped, or dropped)."""
    if isinstance(data, dict) and data and rng.random() < 0.8:
        key = rng.choice(list(data))
        copy = dict(data)
        if rng.random() < 0.15:
            del copy[key]
        else:
            copy[key] = mutate_data(rng, data[key], depth + 1)
        return copy
    if isinstance(data, list) and data and rng.random() < 0.8:
        copy = list(data)
        index = rng.randrange(len(copy))
        copy[index] = mutate_data(rng, copy[index], depth + 1)
        return copy
    choice = rng.random()
    if choice < 0.1:
        return [data]
    if choice < 0.2:
        return {"nested": data}
    return rng.choice(ODD_VALUES)


def parse_plain(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def generate(rng: random.Random) -> str:
    """One file's text: mutated text, mutated data (written as JSON, which is YAML), or
    several documents stitched together."""
    base = rng.choice(BASE_DOCUMENTS[1:])
    kind = rng.random()
    if kind < 0.55:
        return mutate_text(rng, base)
    if kind < 0.9:
        data = mutate_data(rng, parse_plain(base))
        return json.dumps(data, indent=rng.choice([None, 2]))
    return "---\n".join(mutate_text(rng, rng.choice(BASE_DOCUMENTS[1:])) for _ in range(3))


def record_text(rng: random.Random) -> str:
    """An approval record file: a well-formed one mutated as text or as data."""
    record = {
        "format_version": 1,
        "verdict": "approve",
        "workspace": "demo",
        "request_id": "a" * 12,
        "change_hash": "sha256:" + "0" * 64,
        "address": "budget.monthly",
        "approver": "alice",
        "public_key": PUBLIC_KEY.rsplit(" ", 1)[0],
        "signed_at": "2026-12-01T08:00:00Z",
        "expires_at": "2026-12-08T08:00:00Z",
        "comment": "ok",
        "signature": "A" * 88,
    }
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(["[" * 5000, '{"a":' * 5000, '{"format_version": NaN}', "Infinity"])
    if roll < 0.55:
        return json.dumps(mutate_data(rng, record))
    return mutate_text(rng, json.dumps(record, indent=2))


def check(result: tuple[int, str, str], allowed: set[int], what: str) -> None:
    code, out, err = result
    assert code in allowed, (what, code, out[-2000:], err[-2000:])
    for stream in (out, err):
        assert "Traceback" not in stream, (what, stream[-3000:])
        assert "internal error" not in stream, (what, stream[-3000:])
    if code == 1 and SUMMARY.match(err.splitlines()[-1] if err else ""):
        for line in err.splitlines()[:-1]:
            assert LOCATED.match(line), (what, line)


def fuzz(root: Path, cases: int, seed: int, plan_every: int = 5) -> dict[str, int]:
    """Run `cases` generated inputs against `root`; return what was run."""
    rng = random.Random(seed)
    counts = {"cases": 0, "validate": 0, "plan": 0, "approvals verify": 0}
    folder = root / ".cloned"
    for number in range(cases):
        for extra in folder.iterdir():
            if extra.name not in ("workspace.yaml", "state"):
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        text = generate(rng)
        write(root, ".cloned/fuzz.yaml", text)
        if rng.random() < 0.3:
            write(root, ".cloned/more.yaml", generate(rng))
        what = f"seed {seed} case {number}:\n{text[:3000]}"
        check(cli(root, "validate", "--no-cache"), {0, 1}, what)
        check(cli(root, "validate", "--json"), {0, 1}, what)
        counts["validate"] += 2
        if number % plan_every == 0:
            # plan: 0 (text output), 1 (invalid input), 4 (a change strict denies: wildcard egress)
            check(cli(root, "plan"), {0, 1, 2, 4}, what)
            counts["plan"] += 1
        if number % plan_every == 1:
            write(root, f".cloned/approvals/{'a' * 12}/alice.json", record_text(rng))
            check(cli(root, "approvals", "verify"), {0, 1}, what)
            check(cli(root, "plan"), {0, 1, 2, 4}, what)
            counts["approvals verify"] += 1
            counts["plan"] += 1
        counts["cases"] += 1
    return counts


@pytest.fixture
def fuzz_repo(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLONED_NOW", "2026-12-01T09:00:00Z")
    git("add", "-A", cwd=workspace)
    git("commit", "-qm", "workspace", cwd=workspace)
    return workspace


def _timed(run_fuzz: Callable[[], dict[str, int]]) -> tuple[dict[str, int], float]:
    started = time.monotonic()
    counts = run_fuzz()
    return counts, time.monotonic() - started


def test_fuzz_short(fuzz_repo: Path) -> None:
    counts, seconds = _timed(lambda: fuzz(fuzz_repo, cases=150, seed=8))
    assert counts["cases"] == 150
    print(f"fuzz short: {counts} in {seconds:.1f} s")


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(4))
def test_fuzz_long(fuzz_repo: Path, seed: int) -> None:
    counts, seconds = _timed(lambda: fuzz(fuzz_repo, cases=1500, seed=1000 + seed))
    assert counts["cases"] == 1500
    print(f"fuzz long seed {seed}: {counts} in {seconds:.1f} s")
