"""Saved plan files are input: a malformed one is a clear error, never an internal one.

`cloned show FILE` and `cloned apply FILE` read the file into the typed plan document
(reconciler/plan/document.py); whatever is missing, mistyped or unknown is named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.func.engine_helpers import Team, make_team

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return make_team(repo, tmp_path)


@pytest.fixture
def saved(team: Team) -> dict[str, Any]:
    """A saved plan with a change that waits for approval (so it has `approvals` and `rules`
    with requirements), as `cloned plan --out` writes it."""
    assert team.run("apply", "--no-commit").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    assert team.run("plan", "--out", "good.plan").code == 0
    data: dict[str, Any] = json.loads((team.repo / "good.plan").read_text())
    return data


def gated(plan: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = next(c for c in plan["changes"] if "approvals" in c)
    return change


def _set(where: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Edit:
    return lambda plan: where(plan).__setitem__(key, value)


def _drop(where: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Edit:
    return lambda plan: where(plan).__delitem__(key)


def top(plan: dict[str, Any]) -> dict[str, Any]:
    return plan


MALFORMED: list[tuple[str, Edit, str]] = [
    ("no summary", _drop(top, "summary"), "summary: missing"),
    (
        "a summary count as text",
        _set(lambda p: p["summary"], "deny", "1"),
        "summary.deny: not a count",
    ),
    ("a change without diff", _drop(gated, "diff"), "changes[0].diff: missing"),
    (
        "a diff entry with neither side",
        lambda p: gated(p)["diff"].__setitem__(0, {"path": "spec.limits.cost_usd"}),
        "changes[0].diff[0]: neither before nor after",
    ),
    ("changes not a list", _set(top, "changes", {}), "changes: not a list"),
    ("a change not an object", _set(top, "changes", ["x"]), "changes[0]: not an object"),
    ("targets as a string", _set(top, "targets", "budget.daily"), "targets: not a list"),
    ("an unknown action", _set(gated, "action", "explode"), "changes[0].action: not one of"),
    ("an unknown source", _set(top, "actual_source", "elsewhere"), "actual_source: not one of"),
    (
        "a rule id without pack",
        lambda p: gated(p)["rules"][0].update(rule="x"),
        "changes[0].rules[0].rule: not pack/rule",
    ),
    (
        "a requirement without count",
        lambda p: gated(p)["rules"][0]["approvals"].pop("count"),
        "changes[0].rules[0].approvals.count: missing",
    ),
    (
        "approvals without status",
        lambda p: gated(p)["approvals"].pop("status"),
        "changes[0].approvals.status: missing",
    ),
    (
        "approved_by not names",
        lambda p: gated(p)["approvals"].update(approved_by=[1]),
        "changes[0].approvals.approved_by: not a list of strings",
    ),
    (
        "a base without head",
        _set(top, "base", {"ref": "main", "commit": "0" * 40}),
        "base and head: one without the other",
    ),
    ("bootstrap as a number", _set(top, "bootstrap", 0), "bootstrap: not true or false"),
    ("format_version true", _set(top, "format_version", True), "format_version: must be 1"),
    ("a field the format lacks", _set(top, "extra", 1), "extra: not a field of the plan format"),
    (
        "not digests",
        _set(top, "desired_resources", {"budget.daily": 1}),
        "desired_resources: not a mapping",
    ),
]


@pytest.mark.parametrize(
    ("edit", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_plan_file_is_a_clear_error(
    team: Team, saved: dict[str, Any], edit: Edit, reason: str
) -> None:
    plan = json.loads(json.dumps(saved))
    edit(plan)
    (team.repo / "bad.plan").write_text(json.dumps(plan))
    for args in (
        ("show", "bad.plan"),
        ("show", "bad.plan", "--format", "markdown"),
        ("apply", "bad.plan"),
    ):
        result = team.run(*args)
        assert result.code == 1, (args, result.out, result.err)
        assert result.err.startswith(f"Error: bad.plan: not a Cloned plan file ({reason}"), (
            args,
            result.err,
        )
        assert "internal error" not in result.err and "Traceback" not in result.err
    shown = team.run("show", "--json", "bad.plan")
    assert shown.code == 1
    assert json.loads(shown.out)["error"].startswith(f"bad.plan: not a Cloned plan file ({reason}")


def test_the_saved_plan_the_malformed_ones_come_from_is_shown(
    team: Team, saved: dict[str, Any]
) -> None:
    (team.repo / "good.plan").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    shown = team.run("show", "good.plan")
    assert shown.code == 0, shown.err
    assert "approvals: request" in shown.out
    as_json = team.run("show", "--json", "good.plan")
    assert as_json.out == json.dumps(saved, indent=2, sort_keys=True) + "\n"
