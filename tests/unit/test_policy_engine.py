"""The policy engine's parts: built-in packs as data, building the active policy, matching."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.errors import ClonedError
from reconciler.load.validate import validate_document
from reconciler.load.yamlio import parse
from reconciler.model.builtins import BUILTIN_POLICY_PACKS
from reconciler.plan.types import ABSENT, FieldDiff, Requirement
from reconciler.policy import build_policy, decide
from reconciler.policy.builtin import PACKS_DIR, builtin_pack, render_json
from reconciler.policy.describe import describe_match
from reconciler.policy.match import grew, matches, rose_over
from reconciler.policy.rules import Match, ValueCondition, field_pattern
from tests.unit.policy_samples import BUDGET, CONNECTOR, OVERLAY, create, delete, update

# --- the built-in packs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_POLICY_PACKS)
def test_builtin_pack_is_a_valid_policypack_document(name: str) -> None:
    documents = parse((PACKS_DIR / f"{name}.yaml").read_text())
    assert len(documents) == 1
    findings, data = validate_document(documents[0].data)
    assert findings == []
    assert data is not None
    assert (data["kind"], data["metadata"]["name"]) == ("PolicyPack", name)
    pack = builtin_pack(name)
    assert pack.builtin and pack.description
    for rule in pack.rules:
        assert rule.description, f"{rule.id} needs a description"
        creates = not rule.match.actions or "create" in rule.match.actions
        if rule.decision == "approval" and creates:
            assert rule.match.bootstrap is False, f"{rule.id} would gate bootstrap creates"


def test_builtin_packs_are_exactly_the_files_shipped() -> None:
    assert sorted(path.stem for path in PACKS_DIR.glob("*.yaml")) == sorted(BUILTIN_POLICY_PACKS)
    assert sorted(path.stem for path in PACKS_DIR.glob("*.json")) == sorted(BUILTIN_POLICY_PACKS)


@pytest.mark.parametrize("name", BUILTIN_POLICY_PACKS)
def test_the_json_plans_read_is_generated_from_the_yaml(name: str) -> None:
    committed = (PACKS_DIR / f"{name}.json").read_text()
    assert committed == render_json(name), "run `make schemas`: the pack's JSON is stale"


def test_strict_is_baseline_with_two_distinct_non_author_approvals_and_denies() -> None:
    base, strict = builtin_pack("baseline"), builtin_pack("strict")
    by_name = {rule.name: rule for rule in strict.rules}
    for rule in base.rules:
        twin = by_name.pop(rule.name)
        assert twin.match.data == rule.match.data
        assert rule.requirement == Requirement(1, ("admins",))
        assert twin.requirement == Requirement(2, ("admins",), distinct=True, exclude_author=True)
    assert sorted(by_name) == ["connector-wildcard-egress", "connector-wildcard-package-egress"]
    for deny in by_name.values():
        assert deny.decision == "deny" and deny.match.bootstrap is None


def test_unknown_builtin_is_a_user_error() -> None:
    with pytest.raises(ClonedError, match='no built-in policy pack named "lenient"'):
        builtin_pack("lenient")


# --- building the active policy ------------------------------------------------------------------


def overlay(name: str = "house", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cloned/v1",
        "kind": "PolicyPack",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_extends_brings_in_the_builtin_first_and_each_pack_once() -> None:
    packs = {"house": overlay(extends="strict")}
    policy = build_policy(["house"], packs)
    assert policy.pack_names == ("strict", "house")
    again = build_policy(["baseline", "house", "strict", "baseline"], packs)
    assert again.pack_names == ("baseline", "strict", "house")


def test_default_is_baseline_and_the_source_is_kept() -> None:
    policy = build_policy((), {}, source=".cloned/ (desired state)")
    assert policy.pack_names == ("baseline",)
    assert policy.source == ".cloned/ (desired state)"


def test_unknown_pack_fails_closed_naming_it() -> None:
    with pytest.raises(ClonedError, match=r'"security".*known: baseline, strict, house'):
        build_policy(["baseline", "security"], {"house": overlay()})


def test_a_declared_pack_may_not_take_a_builtin_name() -> None:
    with pytest.raises(ClonedError, match='PolicyPack "baseline" has the name of a built-in'):
        build_policy(["baseline"], {"baseline": overlay("baseline")})


def test_extends_must_name_a_builtin() -> None:
    with pytest.raises(ClonedError, match='extends "house"'):
        build_policy(["other"], {"other": overlay("other", extends="house")})


def test_applied_state_records_without_metadata_name_work() -> None:
    record = {"metadata": {"labels": {}, "annotations": {}}, "spec": {"rules": [DENY_RUNS]}}
    policy = build_policy(["baseline", "house"], {"house": record})
    assert decide(policy, create("Run", {"pipeline": "p"})).kind == "deny"


DENY_RUNS = {"name": "no-runs", "decision": "deny", "match": {"kinds": ["Run"]}}


def test_deny_wins_and_lists_only_deny_rules() -> None:
    packs = {"house": overlay(rules=[{**DENY_RUNS, "match": {"actions": ["delete"]}}])}
    policy = build_policy(["baseline", "house"], packs)
    decision = decide(policy, delete("Budget", BUDGET))
    assert decision.kind == "deny"
    assert [rule.id for rule in decision.rules] == ["house/no-runs"]
    assert decision.reason == "forbidden by house/no-runs"


def test_an_overlay_auto_rule_cannot_loosen_a_builtin_rule() -> None:
    auto = {"name": "budgets-are-fine", "decision": "auto", "match": {"kinds": ["Budget"]}}
    policy = build_policy(["baseline", "house"], {"house": overlay(rules=[auto])})
    raise_ = decide(policy, update("Budget", BUDGET, "limits.cost_usd", 80))
    assert raise_.kind == "approval"
    assert [rule.id for rule in raise_.rules] == ["baseline/budget-raise"]
    lower = decide(policy, update("Budget", BUDGET, "limits.cost_usd", 10))
    assert lower.kind == "auto"
    assert [rule.id for rule in lower.rules] == ["house/budgets-are-fine"]


def test_runtime_rules_are_merged_across_packs() -> None:
    house = overlay(
        extends="baseline",
        tools={"deny": ["*.delete_*"], "requireApproval": ["github.merge"]},
        egress={"allowHosts": ["*.corp.example"], "denyHosts": ["evil.example"]},
        redaction=[{"name": "token", "regex": "tok_[a-z]+"}],
        rateLimits={"callsPerMinute": 60},
    )
    extra = overlay(
        "extra",
        tools={"deny": ["*.delete_*", "shell.*"]},
        egress={"denyHosts": ["evil.example", "bad.example"]},
        redaction=[{"name": "key", "regex": "key_[0-9]+"}],
        rateLimits={"callsPerMinute": 30, "callsPerHour": 500},
    )
    policy = build_policy(["house", "extra"], {"house": house, "extra": extra})
    assert policy.pack_names == ("baseline", "house", "extra")
    assert policy.tools_deny == ("*.delete_*", "shell.*")
    assert policy.tools_require_approval == ("github.merge",)
    assert policy.egress.allow_lists == (("*.corp.example",),)
    assert policy.egress.deny_hosts == ("evil.example", "bad.example")
    assert policy.redaction_patterns == ("tok_[a-z]+", "key_[0-9]+")
    assert (policy.calls_per_minute, policy.calls_per_hour) == (30, 500)


def test_quickstart_redaction_reaches_the_policy() -> None:
    assert OVERLAY.redaction_patterns == ("gh[pousr]_[A-Za-z0-9]{36}",)


# --- matching details ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("globs", "path", "expected"),
    [
        (("spec.limits.*",), "spec.limits.cost_usd", True),
        (("spec.limits.*",), "spec.limits", False),
        (("spec.egress",), "spec.egress.allowHosts", True),
        (("spec.egress",), "spec.egress", True),
        (("spec.egr",), "spec.egress.allowHosts", False),
        (("spec.egress.allowHosts",), "spec.egress.allowHostsExtra", False),
        (("spec.tools.allow", "spec.secrets"), "spec.secrets", True),
        (("spec.*.allow",), "spec.tools.allow", True),
        (("spec.limits.cost_[ut]sd",), "spec.limits.cost_usd", True),
    ],
)
def test_field_globs_match_the_path_or_an_ancestor(
    globs: tuple[str, ...], path: str, expected: bool
) -> None:
    assert (field_pattern(globs).match(path) is not None) is expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (5, 6, True),
        (5, 5.0, False),
        (5, 4, False),
        (5, ABSENT, True),
        (ABSENT, 5, False),
        (["a"], ["a", "b"], True),
        (["a", "b"], ["b"], False),
        (ABSENT, ["a"], True),
        (ABSENT, [], False),
        (ABSENT, "x", True),
        (ABSENT, "", False),
        ("x", "y", False),
        (True, False, False),
        ([{"name": "a"}], [{"name": "a"}, {"name": "b"}], True),
    ],
)
def test_what_counts_as_growing(before: Any, after: Any, expected: bool) -> None:
    assert grew(FieldDiff("spec.x", before, after)) is expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (50, 60, False),
        (50, 60.5, True),
        (100, 121, True),
        (0.1, 0.12, False),
        (0.1, 0.1201, True),
        (0, 1, True),
        (0, 0, False),
        (10, ABSENT, True),
        (ABSENT, 10, False),
        (10, "10", False),
    ],
)
def test_percent_over_20_is_strict(before: Any, after: Any, expected: bool) -> None:
    assert rose_over(FieldDiff("spec.limits.x", before, after), 20) is expected


def test_where_looks_at_scalars_and_list_elements_of_the_desired_state() -> None:
    def where(field: str, regex: str) -> Match:
        return Match(where=(ValueCondition(field, re.compile(regex)),))

    created = create("Connector", CONNECTOR)
    assert matches(where("spec.egress.allowHosts", r"^api\."), created)
    assert matches(where("spec.version", r"^1\."), created)
    assert matches(where("metadata.name", "^sample$"), created)
    assert not matches(where("spec.egress.allowHosts", r"^\*$"), created)
    assert not matches(where("spec.nothing.here", "."), created)
    assert not matches(where("spec.version", "."), delete("Connector", CONNECTOR))


def test_risk_and_kind_conditions() -> None:
    high = update("Budget", BUDGET, "period", "day", risk="high")
    assert matches(Match(risk=("high",)), high)
    assert not matches(Match(risk=("low", "medium")), high)
    assert matches(Match(kinds=("budget",)), high)
    assert not matches(Match(kinds=("Connector",)), high)
    assert matches(Match(), high)


def test_grows_false_and_fields_without_a_matching_diff() -> None:
    lower = update("Budget", BUDGET, "limits.cost_usd", 10)
    assert matches(Match(grows=False), lower)
    assert not matches(Match(grows=True), lower)
    assert not matches(
        Match(fields=("spec.period",), field_pattern=field_pattern(("spec.period",))), lower
    )


def test_match_descriptions() -> None:
    rules = {rule.name: rule for rule in builtin_pack("strict").rules}
    # Issue 8: budget-raise now gates every Budget change that does not provably tighten.
    assert describe_match(rules["budget-raise"].match) == (
        "Budget update or replace; unless it tightens"
    )
    assert describe_match(rules["delete"].match) == "any delete"
    assert describe_match(rules["workspace-change"].match) == (
        "any Workspace change; not at bootstrap"
    )
    assert describe_match(rules["connector-wildcard-egress"].match) == (
        r"any Connector change; spec.egress.allowHosts matches ^\*$"
    )
    assert describe_match(Match()) == "any change"
    assert describe_match(Match(percent_over=20.0, risk=("high",), bootstrap=True)) == (
        "any change; raised by more than 20%; risk high; at bootstrap only"
    )
