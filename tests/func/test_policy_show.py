"""`cloned policy show`: the active packs and their rules, for people and for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cloned, copy_quickstart, write

BASELINE_RULES = [
    "budget-raise",
    "policy-change",
    "workspace-change",
    "delete",
    "connector-widening",
    "connector-publisher",
    "connector-outside-registry",
    "connector-tools",
    "connector-tool-flagged",
    "registry-change",
    "model-change",
    "secret-widening",
    "secret-grant",
    "pipeline-budget",
]


def quickstart(repo: Path) -> Path:
    return copy_quickstart(repo)


def set_packs(repo: Path, packs: str) -> None:
    path = repo / ".cloned" / "workspace.yaml"
    text = path.read_text()
    assert "policyPacks: [baseline, research-overlay]" in text
    path.write_text(text.replace("[baseline, research-overlay]", packs))


def test_quickstart_shows_baseline_and_the_overlay(repo: Path) -> None:
    result = cloned("policy", "show", cwd=quickstart(repo))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "Policy from .cloned/ (nothing applied yet): baseline, research-overlay"
    assert "baseline (built-in)" in lines
    assert "research-overlay (extends baseline)" in lines
    assert "  baseline/budget-raise  approval: 1 from admins" in lines
    # Issue 8: budget-raise gates every Budget change that does not provably tighten.
    assert "      when: Budget update or replace; unless it tightens" in lines
    assert (
        "  research-overlay/big-budget-raise  approval: 2 from admins (distinct people, not the "
        "author)" in lines
    )
    assert "      when: Budget update; field spec.limits.*; raised by more than 20%" in lines
    assert "      Raising a budget by more than 20% needs two people." in lines
    assert "  tools denied: *.delete_*" in lines
    assert "  redacted: github-token" in lines
    assert "A change is forbidden if any matching rule denies it" in result.out
    assert "gh[pousr]" not in result.out  # pattern names, not the patterns themselves
    assert result.err == ""


def test_json_is_a_list_of_rule_objects(repo: Path) -> None:
    result = cloned("policy", "show", "--json", cwd=quickstart(repo))
    assert result.code == 0, result.err
    rules = json.loads(result.out)
    assert [rule["rule"] for rule in rules] == [
        *(f"baseline/{name}" for name in BASELINE_RULES),
        "research-overlay/connector-egress-needs-security",
        "research-overlay/big-budget-raise",
    ]
    first = rules[0]
    assert first["pack"] == "baseline"
    assert first["name"] == "budget-raise"
    assert first["decision"] == "approval"
    assert first["approvals"] == {
        "count": 1,
        "groups": ["admins"],
        "distinct": False,
        "exclude_author": False,
    }
    assert first["match"]["kinds"] == ["Budget"]
    # Issue 8: budget-raise gates every Budget change that does not provably tighten.
    assert first["match"]["tightens"] is False
    assert first["when"] == "Budget update or replace; unless it tightens"
    assert first["description"].startswith("Raising a Budget limit")
    assert rules[-1]["match"]["increase"] == {"percentOver": 20.0}


def test_strict_shows_its_deny_rule(repo: Path) -> None:
    quickstart(repo)
    set_packs(repo, "[strict]")
    result = cloned("policy", "show", "--json", cwd=repo)
    assert result.code == 0, result.err
    rules = {rule["rule"]: rule for rule in json.loads(result.out)}
    assert list(rules) == [
        *(f"strict/{name}" for name in BASELINE_RULES),
        "strict/connector-wildcard-egress",
        "strict/connector-wildcard-package-egress",
    ]
    deny = rules["strict/connector-wildcard-egress"]
    assert deny["decision"] == "deny"
    assert deny["approvals"] is None
    assert deny["match"]["where"] == [{"field": "spec.egress.allowHosts", "matches": r"^\*$"}]
    text = cloned("policy", "show", cwd=repo)
    assert "  strict/connector-wildcard-egress  deny" in text.out.splitlines()
    assert "  strict/delete  approval: 2 from admins (distinct people, not the author)" in text.out
    # research-overlay is still declared, but the Workspace no longer lists it.
    assert text.out.rstrip().endswith(
        "Declared but not listed in Workspace policyPacks (no effect): research-overlay"
    )


def test_an_overlay_listed_alone_brings_in_the_pack_it_extends(repo: Path) -> None:
    quickstart(repo)
    set_packs(repo, "[research-overlay]")
    result = cloned("policy", "show", cwd=repo)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (
        "Policy from .cloned/ (nothing applied yet): baseline, research-overlay"
    )


def test_works_from_a_subfolder_and_with_a_path(repo: Path, tmp_path: Path) -> None:
    quickstart(repo)
    deep = repo / "src" / "deep"
    deep.mkdir(parents=True)
    assert cloned("policy", "show", cwd=deep).code == 0
    assert cloned("policy", "show", str(repo), cwd=tmp_path).code == 0


def test_an_unknown_pack_is_reported_where_it_is_named(repo: Path) -> None:
    quickstart(repo)
    set_packs(repo, "[baseline, strictest]")
    result = cloned("policy", "show", cwd=repo)
    assert result.code == 1
    assert result.out == ""
    assert (
        ".cloned/workspace.yaml:12:27: spec.policyPacks[1]: no PolicyPack or built-in pack named "
        '"strictest" (did you mean "strict"?)' in result.err
    )


def test_a_pack_may_not_take_a_builtin_name(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/policy/baseline.yaml",
        "apiVersion: cloned/v1\nkind: PolicyPack\nmetadata:\n  name: baseline\nspec: {}\n",
    )
    for command in (("validate",), ("policy", "show")):
        result = cloned(*command, cwd=workspace)
        assert result.code == 1, command
        assert (
            '.cloned/policy/baseline.yaml:4:3: metadata.name: "baseline" is the name of a built-in '
            "policy pack; choose another name (to overlay it, set spec.extends: baseline)"
        ) in result.err


def test_outside_a_workspace(tmp_path: Path) -> None:
    result = cloned("policy", "show", cwd=tmp_path)
    assert result.code == 1
    assert "no .cloned/ folder" in result.err


def test_help_lists_show() -> None:
    result = cloned("policy", "--help")
    assert result.code == 0
    assert "show" in result.out


def test_the_applied_policy_decides_until_a_loosening_is_applied(repo: Path) -> None:
    quickstart(repo)
    assert cloned("apply", cwd=repo).code == 0
    set_packs(repo, "[baseline]")
    applied = cloned("policy", "show", cwd=repo)
    assert applied.out.splitlines()[0] == (
        "Policy from the applied state (state database): baseline, research-overlay"
    )
    proposed = cloned("policy", "show", "--desired", cwd=repo)
    assert proposed.out.splitlines()[0] == "Policy from .cloned/ (desired state): baseline"
    # Dropping the overlay is itself a Workspace change that the applied policy gates.
    plan = cloned("plan", "--json", cwd=repo)
    (change,) = json.loads(plan.out)["changes"]
    assert change["address"] == "workspace.quickstart"
    assert change["decision"] == "approval"
