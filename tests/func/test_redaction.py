"""A value that policy marks secret never reaches an output: terminal, JSON, files, audit."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cloned, write
from tests.func.engine_helpers import MASK_PACK, TOKEN, make_team


def test_a_pattern_secret_is_masked_on_every_output(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path, packs="[baseline, masks]")
    write(repo, ".cloned/masks.yaml", MASK_PACK)
    team.edit(".cloned/budgets.yaml", "period: day", f'period: day\n  description: "key {TOKEN}"')
    outputs = [
        team.run("plan"),
        team.run("plan", "--json"),
        team.run("plan", "--format", "markdown"),
        team.run("plan", "--out", "saved.plan"),
        team.run("show", "saved.plan"),
        team.run("apply"),
    ]
    team.edit(".cloned/budgets.yaml", "limits: {calls: 100}", "limits: {calls: 200}")
    outputs += [team.run("apply"), team.run("approvals", "list", "--json")]
    outputs += [team.run("audit", "log"), team.run("audit", "log", "--json")]
    for result in outputs:
        assert TOKEN not in result.out + result.err
    assert "[REDACTED]" in outputs[1].out
    files = [repo / "saved.plan", repo / ".cloned" / "cloned.lock"]
    files += list((repo / ".cloned" / "audit").rglob("*"))
    for path in files:
        if path.is_file():
            assert TOKEN not in path.read_text(), path
    lock = json.loads((repo / ".cloned" / "cloned.lock").read_text())
    assert lock["resources"]["budget.daily"]["state"]["spec"]["description"] == "key [REDACTED]"
    # The audit chain still verifies: events were hashed after redaction.
    assert (
        cloned("audit", "verify", cwd=repo, env={"CLONED_HOME": str(team.homes["operator"])}).code
        == 0
    )
