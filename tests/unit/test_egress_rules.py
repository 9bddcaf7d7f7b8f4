"""The egress allow and deny lists: wildcard grammar, ports, https only unless a host is listed as
insecure, the Workspace defaults beside the connector's list, packs that can only narrow, and a
deny anywhere that wins over every allow."""

from __future__ import annotations

import pytest

from reconciler.egress.rules import EgressRules, PackEgress
from reconciler.model.kinds import ConnectorEgress
from reconciler.model.workspace import EgressDefaults, WorkspaceDefaults


def rules(
    *hosts: str,
    insecure: tuple[str, ...] = (),
    defaults: tuple[str, ...] = (),
    packs: tuple[PackEgress, ...] = (),
) -> EgressRules:
    egress = ConnectorEgress.model_validate(
        {"allowHosts": list(hosts), "insecureHosts": list(insecure)}
    )
    ws = WorkspaceDefaults(egress=EgressDefaults.model_validate({"allowHosts": list(defaults)}))
    return EgressRules.for_connector("weather", egress, ws, packs)


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [("*.example.org", "https://api.example.org/", True),
     ("*.example.org", "https://a.b.example.org/", True),
     ("*.example.org", "https://example.org/", False),
     ("*.example.org", "https://evilexample.org/", False),
     ("*.example.org", "https://example.org.evil.example/", False),
     ("example.org", "https://example.org/", True),
     ("example.org", "https://EXAMPLE.org./x", True),
     ("example.org", "https://www.example.org/", False),
     ("example.org", "https://example.org:8443/", False),
     ("example.org:8443", "https://example.org:8443/", True),
     ("example.org:8443", "https://example.org/", False),
     ("*", "https://anything.example/", True),
     ("*", "https://8.8.8.8/", True),
     ("*.8.8.8", "https://8.8.8.8/", False)],
)  # fmt: skip
def test_wildcards_and_ports(pattern: str, url: str, allowed: bool) -> None:
    assert rules(pattern).decide(url).allowed is allowed


def test_nothing_is_allowed_by_default() -> None:
    decision = rules().decide("https://api.example.org/")
    assert not decision.allowed and "not in any allow list" in decision.reason
    assert decision.rule is None


def test_an_allowed_decision_names_its_rule() -> None:
    decision = rules("api.example.org").decide("https://api.example.org/v1")
    assert decision.allowed
    assert decision.rule == "connector weather spec.egress.allowHosts: api.example.org"
    assert decision.target is not None and decision.target.url == "https://api.example.org/v1"


def test_the_workspace_defaults_add_hosts_every_connector_may_reach() -> None:
    both = rules("api.example.org", defaults=("proxy.corp.example",))
    assert both.decide("https://api.example.org/").allowed
    decision = both.decide("https://proxy.corp.example/")
    assert decision.allowed and decision.rule == (
        "workspace defaults.egress.allowHosts: proxy.corp.example"
    )


def test_https_only_unless_the_host_is_listed_insecure() -> None:
    refused = rules("api.example.org").decide("http://api.example.org/")
    assert not refused.allowed and "plain http is refused" in refused.reason
    insecure = rules("api.example.org", "old.example.org", insecure=("old.example.org",))
    assert insecure.decide("http://old.example.org/").allowed
    assert not insecure.decide("http://api.example.org/").allowed
    assert not insecure.decide("http://old.example.org:8080/").allowed


def test_insecure_alone_does_not_allow_a_host() -> None:
    decision = rules(insecure=("old.example.org",)).decide("http://old.example.org/")
    assert not decision.allowed and "not in any allow list" in decision.reason


def test_a_pack_allow_list_narrows_and_packs_intersect() -> None:
    packs = (
        PackEgress("corp", allow_hosts=("*.example.org",)),
        PackEgress("team", allow_hosts=("api.example.org", "b.other.example")),
    )
    narrowed = rules("api.example.org", "www.example.org", "b.other.example", packs=packs)
    assert narrowed.decide("https://api.example.org/").allowed
    outside_team = narrowed.decide("https://www.example.org/")
    assert not outside_team.allowed and outside_team.rule == "pack team egress.allowHosts"
    outside_corp = narrowed.decide("https://b.other.example/")
    assert not outside_corp.allowed and outside_corp.rule == "pack corp egress.allowHosts"


def test_a_pack_allow_list_does_not_widen() -> None:
    packs = (PackEgress("corp", allow_hosts=("*",)),)
    assert not rules(packs=packs).decide("https://api.example.org/").allowed


def test_a_deny_anywhere_wins() -> None:
    packs = (
        PackEgress("corp", allow_hosts=("*.example.org",)),
        PackEgress("security", deny_hosts=("secret.example.org",)),
    )
    decision = rules("*.example.org", packs=packs).decide("https://secret.example.org/")
    assert not decision.allowed and "denied" in decision.reason
    assert decision.rule == "pack security egress.denyHosts: secret.example.org"
    # A pack's host without a port covers every port: no deny is dodged by a port.
    assert (
        not rules("secret.example.org:8443", packs=packs)
        .decide("https://secret.example.org:8443/")
        .allowed
    )


def test_a_deny_wildcard_refuses_everything() -> None:
    packs = (PackEgress("lockdown", deny_hosts=("*",)),)
    assert not rules("*", packs=packs).decide("https://api.example.org/").allowed


def test_a_bad_url_is_a_refusal_not_an_error() -> None:
    decision = rules("*").decide("https://user@api.example.org/")
    assert not decision.allowed and "credentials" in decision.reason


def test_a_registry_may_reach_its_own_origin_only() -> None:
    registry = EgressRules.for_registry("acme", "http://127.0.0.1:8765/")
    assert registry.decide("http://127.0.0.1:8765/metadata/1.root.json").allowed
    assert not registry.decide("http://127.0.0.1:8766/").allowed
    assert not registry.decide("http://localhost:8765/").allowed
    tls = EgressRules.for_registry("acme", "https://registry.acme.example/")
    assert tls.decide("https://registry.acme.example/targets/x.tar.gz").allowed
    assert not tls.decide("http://registry.acme.example/").allowed
    assert not tls.decide("https://cdn.acme.example/").allowed


def test_a_model_may_reach_its_base_urls_origin_only_and_packs_still_deny() -> None:
    local = EgressRules.for_model("local", "http://127.0.0.1:8000/v1")
    assert local.decide("http://127.0.0.1:8000/v1/chat/completions").allowed
    assert not local.decide("http://127.0.0.1:8001/v1/chat/completions").allowed
    hosted = EgressRules.for_model("openai", "https://api.openai.com/v1")
    decision = hosted.decide("https://api.openai.com/v1/chat/completions")
    assert (decision.allowed, decision.rule) == (
        True,
        "model openai spec.baseUrl: api.openai.com:443",
    )
    assert not hosted.decide("http://api.openai.com/v1/chat/completions").allowed
    denied = EgressRules.for_model(
        "openai", "https://api.openai.com/v1", [PackEgress("corp", deny_hosts=("*.openai.com",))]
    )
    assert denied.decide("https://api.openai.com/v1/chat/completions").rule == (
        "pack corp egress.denyHosts: *.openai.com"
    )
