"""The decision policy makes for each proposed change, under baseline, strict and an overlay."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.plan.types import ABSENT, ProposedChange, Requirement
from reconciler.policy import decide
from tests.unit.policy_samples import (
    BASELINE,
    BUDGET,
    CONNECTOR,
    OVERLAY,
    PACKAGE,
    POLICIES,
    POLICY,
    PUBLIC_KEY,
    REGISTRY,
    SECRET,
    STRICT,
    WORKSPACE,
    change,
    create,
    delete,
    edited,
    update,
)

RAISE, POLICY_CHANGE, WORKSPACE_CHANGE, DELETE, WIDEN = (
    f"baseline/{rule}"
    for rule in (
        "budget-raise",
        "policy-change",
        "workspace-change",
        "delete",
        "connector-widening",
    )
)
MODEL_CHANGE = "baseline/model-change"
MODEL = {
    "api": "openai-chat",
    "baseUrl": "http://127.0.0.1:8000/v1",
    "model": "qwen2.5-7b",
    "apiKey": "model-key",
    "price": {"inputPerMTok": 0.15, "outputPerMTok": 0.6},
}
BIG_RAISE = "research-overlay/big-budget-raise"
SECURITY = "research-overlay/connector-egress-needs-security"
WILDCARD = "strict/connector-wildcard-egress"
WILD = edited(CONNECTOR, "egress.allowHosts", ["*"])
CONNECTOR_SIGNED = edited(CONNECTOR, "source", {"registry": {"name": "r", "package": "acme/x"}})
PATH_PACKAGE = {**PACKAGE, "source": "path", "path": "connectors/fetch"}
BOB = {"name": "bob", "publicKey": PUBLIC_KEY, "groups": ["admins"]}


@dataclass(frozen=True)
class Case:
    id: str
    change: ProposedChange
    decision: str
    rules: tuple[str, ...] = ()
    policy: str = "baseline"


def approval(id: str, change: ProposedChange, *rules: str, policy: str = "baseline") -> Case:
    return Case(id, change, "approval", rules, policy)


def auto(id: str, change: ProposedChange, policy: str = "baseline") -> Case:
    return Case(id, change, "auto", (), policy)


CASES = [
    # Budgets: raising or removing a limit is gated; lowering or adding one is not.
    approval("budget-raise", update("Budget", BUDGET, "limits.cost_usd", 80), RAISE),
    approval("budget-limit-removed", update("Budget", BUDGET, "limits.tokens", ABSENT), RAISE),
    approval(
        "budget-raise-by-replace",
        update("Budget", BUDGET, "limits.cost_usd", 80, action="replace"),
        RAISE,
    ),
    approval(
        "budget-raise-one-lower-other",
        change(
            "Budget", BUDGET, edited(edited(BUDGET, "limits.cost_usd", 9), "limits.tokens", 5e3)
        ),
        RAISE,
    ),
    auto("budget-lower", update("Budget", BUDGET, "limits.cost_usd", 40)),
    auto("budget-limit-added", update("Budget", BUDGET, "limits.calls", 9)),
    # Issue 8: only a provably tightening Budget change is auto (this case was auto before).
    approval("budget-period", update("Budget", BUDGET, "period", "week"), RAISE),
    approval("budget-scope", update("Budget", BUDGET, "scope", {"pipeline": "p"}), RAISE),
    approval(
        "budget-on-exceed-loosened", update("Budget", BUDGET, "onExceed", "requireApproval"), RAISE
    ),
    approval("budget-description", update("Budget", BUDGET, "description", "x"), RAISE),
    approval(
        "budget-lower-and-rescope",
        change("Budget", BUDGET, edited(edited(BUDGET, "limits.cost_usd", 9), "period", "year")),
        RAISE,
    ),
    auto("budget-on-exceed-block", update("Budget", BUDGET, "onExceed", "block")),
    auto(
        "budget-lower-and-add",
        change("Budget", BUDGET, edited(edited(BUDGET, "limits.cost_usd", 9), "limits.calls", 5)),
    ),
    auto("budget-create", create("Budget", BUDGET)),
    # Policy and workspace: every change after bootstrap, approvers and packs included.
    approval("policy-update", update("PolicyPack", POLICY, "rules", []), POLICY_CHANGE),
    approval("policy-create", create("PolicyPack", POLICY), POLICY_CHANGE),
    approval("policy-delete", delete("PolicyPack", POLICY), POLICY_CHANGE, DELETE),
    auto("policy-create-bootstrap", create("PolicyPack", POLICY, bootstrap=True)),
    approval(
        "workspace-approver-added",
        update("Workspace", WORKSPACE, "approvers", [*WORKSPACE["approvers"], BOB]),
        WORKSPACE_CHANGE,
    ),
    approval(
        "workspace-packs-loosened",
        change("Workspace", edited(WORKSPACE, "policyPacks", ["strict"]), WORKSPACE),
        WORKSPACE_CHANGE,
    ),
    approval(
        "workspace-description",
        update("Workspace", WORKSPACE, "description", "hi"),
        WORKSPACE_CHANGE,
    ),
    approval("workspace-delete", delete("Workspace", WORKSPACE), WORKSPACE_CHANGE, DELETE),
    # Deletes of anything.
    approval("budget-delete", delete("Budget", BUDGET), DELETE),
    approval("secret-delete", delete("SecretRef", SECRET), DELETE),
    approval("connector-delete", delete("Connector", CONNECTOR), DELETE),
    # Connectors: widening is gated, narrowing is not.
    approval(
        "connector-adds-tool",
        update("Connector", CONNECTOR, "tools.allow", ["fetch", "post"]),
        WIDEN,
    ),
    approval(
        "connector-swaps-tool", update("Connector", CONNECTOR, "tools.allow", ["post"]), WIDEN
    ),
    approval(
        "connector-adds-host",
        update("Connector", CONNECTOR, "egress.allowHosts", ["api.example.com", "b.example"]),
        WIDEN,
    ),
    approval(
        "connector-adds-secret",
        update("Connector", CONNECTOR, "secrets", ["token", "other"]),
        WIDEN,
    ),
    approval(
        "connector-first-secret",
        change("Connector", edited(CONNECTOR, "secrets", ABSENT), CONNECTOR),
        WIDEN,
    ),
    approval("connector-create", create("Connector", CONNECTOR), WIDEN),
    # Issue 8: an empty allow list is the default (no allow list), so emptying it is not a
    # provable narrowing (this case was auto before); removing one of two tools is.
    approval(
        "connector-empties-allow-list", update("Connector", CONNECTOR, "tools.allow", []), WIDEN
    ),
    auto(
        "connector-removes-tool",
        change("Connector", edited(CONNECTOR, "tools.allow", ["fetch", "post"]), CONNECTOR),
    ),
    approval(
        "connector-undenies",
        change("Connector", edited(CONNECTOR, "tools.deny", ["x"]), CONNECTOR),
        WIDEN,
    ),
    approval(
        "connector-enabled",
        change("Connector", edited(CONNECTOR, "enabled", False), CONNECTOR),
        WIDEN,
    ),
    auto("connector-disabled", update("Connector", CONNECTOR, "enabled", False)),
    approval(
        "connector-sandbox-none",
        update("Connector", CONNECTOR, "sandbox", {"profile": "none"}),
        WIDEN,
    ),
    auto(
        "connector-sandbox-strict",
        change(
            "Connector",
            edited(CONNECTOR, "sandbox", {"profile": "standard"}),
            edited(CONNECTOR, "sandbox", {"profile": "strict"}),
        ),
    ),
    approval(
        "connector-rate-raised",
        change(
            "Connector",
            edited(CONNECTOR, "limits", {"ratePerMinute": 5}),
            edited(CONNECTOR, "limits", {"ratePerMinute": 50}),
        ),
        WIDEN,
    ),
    approval(
        "connector-rate-removed",
        change(
            "Connector",
            edited(CONNECTOR, "limits", {"ratePerMinute": 5}),
            edited(CONNECTOR, "limits", {}),
        ),
        WIDEN,
    ),
    auto("connector-rate-added", update("Connector", CONNECTOR, "limits", {"ratePerMinute": 5})),
    # Issue 10: what a package declares, the source outside a registry, and Registries.
    approval(
        "connector-package-declares-a-new-tool",
        change(
            "Connector",
            CONNECTOR_SIGNED,
            edited(CONNECTOR_SIGNED, "version", "1.1.0"),
            packages=(PACKAGE, edited(PACKAGE, "declared.tools", ["fetch", "crawl"])),
        ),
        WIDEN,
    ),
    auto(
        "connector-package-drops-a-tool",
        change(
            "Connector",
            CONNECTOR_SIGNED,
            edited(CONNECTOR_SIGNED, "version", "1.1.0"),
            packages=(edited(PACKAGE, "declared.tools", ["fetch", "crawl"]), PACKAGE),
        ),
    ),
    auto(
        "connector-upgrade-declaring-the-same",
        change(
            "Connector",
            CONNECTOR_SIGNED,
            edited(CONNECTOR_SIGNED, "version", "1.1.0"),
            packages=(PACKAGE, edited(PACKAGE, "digest", "sha256:" + "3" * 64)),
        ),
    ),
    approval(
        "connector-allows-downgrade",
        update("Connector", CONNECTOR_SIGNED, "allowDowngrade", True),
        WIDEN,
    ),
    approval(
        "connector-folder-tree-changed",
        change(
            "Connector",
            CONNECTOR,
            CONNECTOR,
            packages=(PATH_PACKAGE, edited(PATH_PACKAGE, "digest", "sha256:" + "4" * 64)),
        ),
        "baseline/connector-outside-registry",
    ),
    auto(
        "connector-folder-at-bootstrap",
        change("Connector", None, CONNECTOR, packages=(None, PATH_PACKAGE), bootstrap=True),
    ),
    auto(
        "connector-folder-disabled",
        change(
            "Connector",
            CONNECTOR,
            edited(CONNECTOR, "enabled", False),
            packages=(PATH_PACKAGE, PATH_PACKAGE),
        ),
    ),
    approval("registry-added", create("Registry", REGISTRY), "baseline/registry-change"),
    approval(
        "registry-root-changed",
        update("Registry", REGISTRY, "root", "sha256:" + "5" * 64),
        "baseline/registry-change",
    ),
    auto("registry-at-bootstrap", create("Registry", REGISTRY, bootstrap=True)),
    Case(
        "strict-package-declares-any-host",
        change(
            "Connector",
            None,
            CONNECTOR_SIGNED,
            bootstrap=True,
            packages=(None, edited(PACKAGE, "declared.egress_hosts", ["*"])),
        ),
        "deny",
        ("strict/connector-wildcard-package-egress",),
        "strict",
    ),
    approval(
        "registry-root-changed-strict",
        update("Registry", REGISTRY, "root", "sha256:" + "5" * 64),
        "strict/registry-change",
        policy="strict",
    ),
    approval(
        "connector-publisher",
        update("Connector", CONNECTOR, "publisher", "evil"),
        WIDEN,
        "baseline/connector-publisher",
    ),
    approval("connector-source", update("Connector", CONNECTOR, "source", {"path": "x"}), WIDEN),
    approval(
        "secret-used-by-more",
        update("SecretRef", SECRET, "usedBy", {"connectors": ["c"]}),
        "baseline/secret-widening",
    ),
    approval(
        "secret-ref-moved",
        update("SecretRef", SECRET, "ref", "vault://y"),
        "baseline/secret-widening",
    ),
    auto(
        "secret-used-by-fewer",
        change("SecretRef", edited(SECRET, "usedBy", {"connectors": ["c"]}), SECRET),
    ),
    approval(
        "pipeline-budget-removed",
        change("Pipeline", {"budget": "b", "steps": []}, {"steps": []}),
        "baseline/pipeline-budget",
    ),
    approval(
        "pipeline-budget-changed",
        change("Pipeline", {"budget": "b", "steps": []}, {"budget": "c", "steps": []}),
        "baseline/pipeline-budget",
    ),
    # Models: where agents' data goes is gated like a Registry; its price is not.
    approval("model-create", create("Model", MODEL), MODEL_CHANGE),
    approval("model-url", update("Model", MODEL, "baseUrl", "https://x.example/v1"), MODEL_CHANGE),
    approval("model-name", update("Model", MODEL, "model", "gpt-4o"), MODEL_CHANGE),
    approval("model-key-changed", update("Model", MODEL, "apiKey", "other-key"), MODEL_CHANGE),
    approval(
        "model-key-added",
        change("Model", {k: v for k, v in MODEL.items() if k != "apiKey"}, MODEL),
        MODEL_CHANGE,
    ),
    approval(
        "model-url-strict",
        update("Model", MODEL, "baseUrl", "https://x.example/v1"),
        "strict/model-change",
        policy="strict",
    ),
    approval("model-delete", delete("Model", MODEL), DELETE),
    auto("model-key-removed", update("Model", MODEL, "apiKey", ABSENT)),
    auto("model-price", update("Model", MODEL, "price", {"inputPerMTok": 9})),
    auto("model-create-bootstrap", create("Model", MODEL, bootstrap=True)),
    auto("pipeline-budget-added", change("Pipeline", {"steps": []}, {"budget": "b", "steps": []})),
    auto("pipeline-steps", change("Pipeline", {"steps": []}, {"steps": [{"name": "s"}]})),
    auto("connector-removes-host", update("Connector", CONNECTOR, "egress.allowHosts", [])),
    auto("connector-removes-secret", update("Connector", CONNECTOR, "secrets", ABSENT)),
    auto("connector-denies-more", update("Connector", CONNECTOR, "tools.deny", ["x"])),
    auto("connector-version", update("Connector", CONNECTOR, "version", "2.0.0")),
    # Bootstrap: every create in an empty workspace applies automatically.
    *(
        auto(f"bootstrap-{kind.lower()}", create(kind, spec, bootstrap=True))
        for kind, spec in (
            ("Workspace", WORKSPACE),
            ("PolicyPack", POLICY),
            ("Budget", BUDGET),
            ("Connector", CONNECTOR),
            ("SecretRef", SECRET),
        )
    ),
    auto("baseline-allows-wildcard", create("Connector", WILD, bootstrap=True)),
    # strict: the same gates with two approvals; wildcard egress is forbidden, at bootstrap too.
    approval(
        "strict-budget-scope",
        update("Budget", BUDGET, "scope", {"pipeline": "p"}),
        "strict/budget-raise",
        policy="strict",
    ),
    approval(
        "strict-connector-sandbox-none",
        update("Connector", CONNECTOR, "sandbox", {"profile": "none"}),
        "strict/connector-widening",
        policy="strict",
    ),
    approval(
        "strict-budget-raise",
        update("Budget", BUDGET, "limits.cost_usd", 80),
        "strict/budget-raise",
        policy="strict",
    ),
    Case(
        "strict-wildcard-at-bootstrap",
        create("Connector", WILD, bootstrap=True),
        "deny",
        (WILDCARD,),
        "strict",
    ),
    Case(
        "strict-wildcard-added",
        update("Connector", CONNECTOR, "egress.allowHosts", ["a.io", "*"]),
        "deny",
        (WILDCARD,),
        "strict",
    ),
    Case(
        "strict-wildcard-kept-on-unrelated-update",
        update("Connector", WILD, "version", "1.0.1"),
        "deny",
        (WILDCARD,),
        "strict",
    ),
    auto(
        "strict-subdomain-wildcard-is-fine",
        create("Connector", edited(CONNECTOR, "egress.allowHosts", ["*.x.io"]), bootstrap=True),
        policy="strict",
    ),
    approval(
        "strict-wildcard-connector-may-be-deleted",
        delete("Connector", WILD),
        "strict/delete",
        policy="strict",
    ),
    # An overlay adds rules; every matching approval rule is required.
    approval(
        "overlay-host-needs-admins-and-security",
        update("Connector", CONNECTOR, "egress.allowHosts", ["api.example.com", "b.example"]),
        WIDEN,
        SECURITY,
        policy="overlay",
    ),
    approval(
        "overlay-raise-exactly-20-percent",
        update("Budget", BUDGET, "limits.cost_usd", 60),
        RAISE,
        policy="overlay",
    ),
    approval(
        "overlay-raise-21-percent",
        update("Budget", BUDGET, "limits.cost_usd", 60.5),
        RAISE,
        BIG_RAISE,
        policy="overlay",
    ),
    approval(
        "overlay-raise-from-zero",
        change("Budget", edited(BUDGET, "limits.cost_usd", 0), BUDGET),
        RAISE,
        BIG_RAISE,
        policy="overlay",
    ),
    approval(
        "overlay-limit-removed",
        update("Budget", BUDGET, "limits.cost_usd", ABSENT),
        RAISE,
        BIG_RAISE,
        policy="overlay",
    ),
    auto("overlay-lower", update("Budget", BUDGET, "limits.cost_usd", 5), policy="overlay"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decision(case: Case) -> None:
    decision = decide(POLICIES[case.policy], case.change)
    assert decision.kind == case.decision
    assert tuple(rule.id for rule in decision.rules) == case.rules
    if case.decision == "auto":
        assert decision.reason == "no rule requires approval"


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


def test_rule_refs_carry_the_requirement_and_the_description() -> None:
    raise_ = update("Budget", BUDGET, "limits.cost_usd", 80)
    (base,) = decide(BASELINE, raise_).requirements
    assert base.requirement == Requirement(count=1, groups=("admins",))
    assert base.reason.startswith("Raising a Budget limit")
    (strict,) = decide(STRICT, raise_).requirements
    assert strict.requirement == Requirement(2, ("admins",), distinct=True, exclude_author=True)
    assert strict.requirement.describe() == "2 from admins (distinct people, not the author)"
    both = decide(OVERLAY, update("Budget", BUDGET, "limits.cost_usd", 61))
    assert [rule.requirement for rule in both.requirements] == [
        Requirement(1, ("admins",)),
        Requirement(2, ("admins",), distinct=True, exclude_author=True),
    ]
    assert both.reason == f"required by {RAISE}, {BIG_RAISE}"
