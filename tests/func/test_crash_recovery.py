"""An apply killed at any point leaves a database that opens, an audit chain that verifies,
and a state the next apply converges from."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLONED, cloned, write
from tests.func.engine_helpers import make_team

BUDGET = """\
apiVersion: cloned/v1
kind: Budget
metadata: {{name: b{index:03d}}}
spec: {{scope: {{workspace: true}}, period: day, limits: {{calls: {calls}}}}}
"""


def budgets(calls: int, count: int = 400) -> str:
    return "---\n".join(BUDGET.format(index=i, calls=calls + i) for i in range(count))


@pytest.mark.slow
def test_apply_killed_at_random_points_recovers(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path)
    env = {**os.environ, "CLONED_HOME": str(team.homes["operator"])}
    rng = random.Random(20261121)
    calls = 10_000
    killed = 0
    for round_ in range(10):
        # Lowering limits applies automatically, so every round has 400 changes to make.
        calls -= 100
        write(repo, ".cloned/many.yaml", budgets(calls))
        process = subprocess.Popen(
            [str(CLONED), "apply"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 0.8))
        process.send_signal(signal.SIGKILL)
        killed += process.wait(timeout=30) == -signal.SIGKILL
        verified = cloned("audit", "verify", cwd=repo, env={"CLONED_HOME": env["CLONED_HOME"]})
        assert verified.code == 0, f"round {round_}: {verified.out}{verified.err}"
        plan = team.run("plan", "--json")
        assert plan.code == 0, f"round {round_}: the state must still plan: {plan.err}"
    # The kills must land mid-apply for this test to mean anything (apply takes ~1 s here).
    assert killed >= 3, f"only {killed} of 10 applies were killed before they finished"
    converged = team.run("apply")
    assert converged.code == 0, converged.out + converged.err
    assert team.run("plan", "--detailed-exitcode").code == 0
    assert team.run("audit", "verify").code == 0
    # cloned.lock caught up too, even if the kill came between the last change and its write.
    lock = json.loads((repo / ".cloned" / "cloned.lock").read_text())
    assert lock["resources"]["budget.b399"]["state"]["spec"]["limits"]["calls"] == calls + 399
