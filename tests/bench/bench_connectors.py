"""Benchmark of connector installs, verification and plans over installed connectors.

`make bench` runs this after `bench.py`. It builds, under the git-ignored `.bench/`, a real
signed registry with Cloned's own commands (one 1 MB package and 100 small ones), serves it on
loopback, and times whole processes (median of `--repeat` runs):

- `cloned apply` of a workspace with one Registry and one Connector whose package is 1 MB,
  from an empty state each time, next to the same apply without the Connector: the
  difference is what installing costs (fetch over HTTP, TUF verification, safe extraction,
  the read-only store); goal: the whole apply under 300 ms;
- `cloned connectors verify` of 100 installed connectors (every file re-hashed); goal 1 s;
- a no-op `cloned plan` of a workspace with 100 installed connectors next to one with 100
  budgets: per resource, a connector must cost no more than a budget, since a plan neither
  starts a server nor re-hashes a package nor asks a registry.

    python tests/bench/bench_connectors.py [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from timing import WORKSPACE, Timing, git, hermetic_env, ms, run_json, run_once

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".bench" / "connectors"
CLONED = REPO / ".venv" / "bin" / "cloned"
MANIFEST = """\
name: {name}
version: 1.0.0
publisher: bench
run: {{command: [python, server.py]}}
tools: [lookup, search]
"""
COUNT = 100


def cloned(*args: str, env: dict[str, str], cwd: Path = WORK) -> str:
    done = subprocess.run([str(CLONED), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: cloned {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def build_registry(env: dict[str, str]) -> str:
    """The registry (keys, init, the bench publisher, 101 packages); its root pin."""
    folder = WORK / "registry"
    for key in ("root", "targets", "online", "bench"):
        cloned("keys", "generate", key, env=env)
    top = ("--targets-key", "targets", "--online-key", "online")
    out = cloned("registry", "init", str(folder), "--root-key", "root", *top, "--json", env=env)
    cloned("registry", "delegate", str(folder), "--name", "bench", "--publisher-key", "bench",
           *top, env=env)  # fmt: skip
    for index, name in enumerate(["big", *(f"tool-{i:03d}" for i in range(COUNT))]):
        src = WORK / "src" / name
        src.mkdir(parents=True)
        (src / "connector.yaml").write_text(MANIFEST.format(name=name))
        (src / "server.py").write_text(f"# {name}\nimport sys\nfor line in sys.stdin:\n    pass\n")
        if name == "big":
            (src / "data.bin").write_bytes(os.urandom(1024 * 1024))
        archive = WORK / "archives" / f"{name}.tar.gz"
        archive.parent.mkdir(exist_ok=True)
        cloned("connectors", "pack", str(src), "--out", str(archive), env=env)
        cloned("registry", "publish", str(folder), str(archive), "--key", "bench",
               "--online-key", "online", env=env)  # fmt: skip
        if index % 25 == 0:
            print(f"bench: published {index + 1} packages", file=sys.stderr)
    return str(json.loads(out)["root_pin"])


def registry_yaml(url: str, pin: str) -> str:
    return (
        "apiVersion: cloned/v1\nkind: Registry\nmetadata: {name: bench}\n"
        f"spec:\n  url: {url}\n  root: {pin}\n"
    )


def connector_yaml(name: str) -> str:
    return (
        f"---\napiVersion: cloned/v1\nkind: Connector\nmetadata: {{name: {name}}}\nspec:\n"
        f"  source: {{registry: {{name: bench, package: bench/{name}}}}}\n"
        "  version: 1.0.0\n  publisher: bench\n"
    )


def budget_yaml(index: int) -> str:
    return (
        f"---\napiVersion: cloned/v1\nkind: Budget\nmetadata: {{name: b-{index:03d}}}\nspec:\n"
        f"  scope: {{workspace: true}}\n  period: day\n  limits: {{calls: {100 + index}}}\n"
    )


def workspace(name: str, documents: str, env: dict[str, str]) -> Path:
    """A committed git repository holding `.cloned/` with the Workspace and `documents`."""
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    (root / ".cloned").mkdir(parents=True)
    (root / ".cloned" / "workspace.yaml").write_text(WORKSPACE)
    (root / ".cloned" / "resources.yaml").write_text(documents)
    (root / ".gitignore").write_text(".cloned/state/\n")
    git("init", "-q", "-b", "main", cwd=root, env=env)
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", "bench", cwd=root, env=env)
    return root


def fresh_apply(template: Path, env: dict[str, str]) -> float:
    """One bootstrap apply of a fresh copy of `template`, timed."""
    copy = template.with_name(template.name + "-run")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(template, copy, symlinks=True)
    return run_once([str(CLONED), "apply"], copy, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = hermetic_env(WORK)
    sys.path.insert(0, str(REPO))
    from reconciler.packages.registry.serve import RegistryServer

    pin = build_registry(env)
    server = RegistryServer(WORK / "registry", "127.0.0.1", 0).start()
    try:
        results = run(server.url, pin, env, args.repeat)
    finally:
        server.shutdown()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps({k: v.samples for k, v in results.items()}, indent=2))
    return 0


def run(url: str, pin: str, env: dict[str, str], repeat: int) -> dict[str, Timing]:
    registry = registry_yaml(url, pin)
    big = workspace("install", registry + connector_yaml("big"), env)
    bare = workspace("install-bare", registry, env)
    many = workspace(
        "many", registry + "".join(connector_yaml(f"tool-{i:03d}") for i in range(COUNT)), env
    )
    budgets = workspace("budgets", registry + "".join(budget_yaml(i) for i in range(COUNT)), env)
    results = {
        key: Timing(key) for key in ("install", "bare", "verify", "plan-connectors", "plan-budgets")
    }
    for _ in range(repeat):
        results["install"].samples.append(fresh_apply(big, env))
        results["bare"].samples.append(fresh_apply(bare, env))
    for root in (many, budgets):
        run_once([str(CLONED), "apply"], root, env)
        run_json([str(CLONED), "plan", "--json"], root, env)  # the validation cache, warm
    for _ in range(repeat):
        results["verify"].samples.append(run_once([str(CLONED), "connectors", "verify"], many, env))
        results["plan-connectors"].samples.append(run_once([str(CLONED), "plan"], many, env))
        results["plan-budgets"].samples.append(run_once([str(CLONED), "plan"], budgets, env))
    return results


def report(results: dict[str, Timing]) -> str:
    install, bare = results["install"].median, results["bare"].median
    verify = results["verify"].median
    plan_c, plan_b = results["plan-connectors"].median, results["plan-budgets"].median

    def goal(text: str, met: bool) -> str:
        return f"{text}: {'**met**' if met else '**not met**'}"

    rows = [
        (
            "`cloned apply`: Registry + one 1 MB package over loopback (bootstrap)",
            install,
            goal("under 300 ms", install < 300),
        ),
        ("the same apply without the Connector", bare, ""),
        ("installing the 1 MB package (the difference)", install - bare, ""),
        (
            f"`cloned connectors verify`, {COUNT} installed connectors",
            verify,
            goal("under 1 s", verify < 1000),
        ),
        (
            f"no-op `cloned plan`, {COUNT} installed connectors",
            plan_c,
            goal("no more than budgets", plan_c <= plan_b * 1.1),
        ),
        (f"no-op `cloned plan`, {COUNT} budgets", plan_b, ""),
    ]
    lines = ["## Connectors (whole processes, median wall ms)", "", "| what | ms | goal |"]
    lines.append("| --- | ---: | --- |")
    lines += [f"| {what} | {ms(value)} | {said} |" for what, value, said in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
