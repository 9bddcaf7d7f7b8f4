"""schemas/ and the pydantic models are one contract: same files, same verdicts on samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from reconciler.data import data_dir
from reconciler.model import schemagen
from reconciler.model.kinds import KINDS
from tests.conftest import PUBLIC_KEY


def test_committed_schemas_match_the_models() -> None:
    folder = data_dir("schemas")
    for name, text in schemagen.generated().items():
        assert (folder / name).read_text() == text, f"run `make schemas`: {name} is stale"


SCHEMA_FILES = sorted(path.name for path in data_dir("schemas").glob("*.json"))
HAND_WRITTEN = {
    "approval-record.schema.json",
    "audit-checkpoint.schema.json",
    "audit-event.schema.json",
    "lock.schema.json",
    "plan.schema.json",
    "skillpack.schema.json",
}


def test_schemas_are_generated_or_known_hand_written_ones() -> None:
    assert set(SCHEMA_FILES) == set(schemagen.generated()) | HAND_WRITTEN


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((data_dir("schemas") / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://cloned.dev/schemas/v1/{name}"
    jsonschema.Draft202012Validator.check_schema(schema)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_reference_resolves(name: str) -> None:
    schema = json.loads((data_dir("schemas") / name).read_text())
    resolver = _registry().resolver(base_uri=schema["$id"])
    for ref in _refs(schema):
        resolver.lookup(ref)  # raises when the file or the JSON pointer does not exist


def doc(kind: str, spec: Any, name: str = "sample") -> dict[str, Any]:
    return {"apiVersion": "cloned/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


BUDGET = {"scope": {"workspace": True}, "period": "month", "limits": {"cost_usd": 5}}
CONNECTOR = {"source": {"path": "connectors/x"}, "version": "1.0.0", "publisher": "acme"}
PIPELINE = {"steps": [{"name": "a", "skill": "research.summarize"}]}
MODEL = {"api": "openai-chat", "baseUrl": "http://127.0.0.1:8000/v1", "model": "qwen2.5-7b"}
MODEL_STEP = {"name": "local", "prompt": "Summarise ${inputs.topic}", "maxTokens": 800}
RULE = {"name": "r", "decision": "approval", "approvals": {"groups": ["admins"]}}


CLIENT = "00000000-0000-4000-8000-000000000001"


def azure_vault(**credential: Any) -> dict[str, Any]:
    return {"vaultUrl": "https://kv1.vault.azure.net", "credential": credential}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


VALID = [
    doc("Workspace", {}),
    doc("Workspace", {"approvers": [{"name": "a", "publicKey": PUBLIC_KEY, "groups": ["admins"]}]}),
    doc(
        "Workspace",
        {"vault": {"provider": "azure", "azure": {"vaultUrl": "https://kv1.vault.azure.net/"}}},
    ),
    doc("Workspace", {"vault": {"provider": "azure", "azure": azure_vault(type="default")}}),
    doc(
        "Workspace",
        {"vault": {"provider": "azure", "azure": azure_vault(type="managedIdentity")}},
    ),
    doc(
        "Workspace",
        {
            "vault": {
                "provider": "azure",
                "azure": azure_vault(type="managedIdentity", clientId=CLIENT),
            }
        },
    ),
    doc(
        "Workspace",
        {
            "vault": {
                "provider": "azure",
                "azure": azure_vault(
                    type="clientSecret", tenantId="contoso.onmicrosoft.com", clientId=CLIENT
                ),
            }
        },
    ),
    doc("Workspace", {"git": {"author": {"name": "Bot", "email": "bot@example.com"}}}),
    doc("PolicyPack", {"extends": "baseline", "rules": [RULE]}),
    doc(
        "PolicyPack",
        {"rules": [{"name": "d", "decision": "deny", "match": {"kinds": ["Connector"]}}]},
    ),
    doc("PolicyPack", {"redaction": [{"name": "k", "regex": "AKIA[0-9A-Z]{16}"}]}),
    doc("PolicyPack", {"rules": [with_(RULE, match={"increase": {"percentOver": 20}})]}),
    doc("Budget", BUDGET),
    doc("Budget", with_(BUDGET, scope={"connector": "github"}, onExceed="requireApproval")),
    doc("Budget", with_(BUDGET, limits={"tokens": 0, "calls": 1, "wall_seconds": 60})),
    doc("Budget", with_(BUDGET, scope={"workspace": True, "connector": None})),
    doc("Connector", CONNECTOR),
    doc("Connector", with_(CONNECTOR, source={"registry": {"name": "acme", "package": "acme/x"}})),
    doc(
        "Connector",
        with_(CONNECTOR, source={"pypi": {"package": "mcp-server-time", "lock": "l.txt"}}),
    ),
    doc("Connector", with_(CONNECTOR, source={"builtin": "notes"}, allowDowngrade=True)),
    doc("Registry", {"url": "https://r.example/", "root": "sha256:" + "a" * 64}),
    doc(
        "Connector", with_(CONNECTOR, egress={"allowHosts": ["*.example.com", "api.x.io:443", "*"]})
    ),
    doc("SecretRef", {"ref": "vault://github-token"}),
    doc("SecretRef", {"ref": "vault://t", "usedBy": {"connectors": ["github"]}}),
    doc(
        "Blueprint",
        {"source": {"builtin": "researcher"}, "parameters": {"depth": 2, "x": [1, "a"]}},
    ),
    doc("Blueprint", {"source": {"path": "bp/mine.yaml"}}),
    doc("Pipeline", PIPELINE),
    doc(
        "Pipeline",
        {"steps": [{"name": "a", "tool": {"connector": "c", "name": "t"}, "with": {"q": 1}}]},
    ),
    doc("Pipeline", with_(PIPELINE, inputs={"topic": {"type": "string", "required": True}})),
    doc("Pipeline", {"steps": [{"name": "draft", "model": MODEL_STEP}]}),
    doc(
        "Pipeline",
        {
            "steps": [
                {
                    "name": "draft",
                    "model": with_(MODEL_STEP, system="Be brief.", schema={"type": "object"}),
                }
            ]
        },
    ),
    doc("Run", {"pipeline": "p", "inputs": {"topic": "x", "n": 3}}),
    doc("Model", MODEL),
    doc(
        "Model",
        with_(
            MODEL,
            baseUrl="https://api.openai.com/v1",
            model="gpt-4o-mini",
            apiKey="openai-key",
            price={"inputPerMTok": 0.15, "outputPerMTok": 0.6},
            description="OpenAI",
        ),
    ),
    doc("Model", with_(MODEL, baseUrl="https://res.openai.azure.com/openai/v1", price={})),
    doc("Model", with_(MODEL, baseUrl="http://[::1]:11434/v1", model="qwen2.5:7b")),
]

INVALID = [
    {"kind": "Workspace", "metadata": {"name": "x"}, "spec": {}},
    with_(doc("Workspace", {}), apiVersion="cloned/v2"),
    with_(doc("Workspace", {}), extra=1),
    with_(doc("Workspace", {}), metadata={"name": "Bad_Name"}),
    with_(doc("Workspace", {}), metadata={"name": "-x"}),
    with_(doc("Workspace", {}), metadata={"name": "a" * 64}),
    doc("Workspace", {"tier": "galactic"}),
    doc("Workspace", {"policyPacks": []}),
    doc("Workspace", {"approvers": [{"name": "a", "publicKey": "ssh-rsa AAAA", "groups": ["x"]}]}),
    doc("Workspace", {"approvers": [{"name": "a", "publicKey": PUBLIC_KEY, "groups": []}]}),
    doc("Workspace", {"vault": {"provider": "azure"}}),
    doc("Workspace", {"vault": {"provider": "azure", "azure": azure_vault(type="clientSecret")}}),
    doc(
        "Workspace",
        {
            "vault": {
                "provider": "azure",
                "azure": azure_vault(type="clientSecret", clientId=CLIENT),
            }
        },
    ),
    doc(
        "Workspace",
        {
            "vault": {
                "provider": "azure",
                "azure": azure_vault(type="managedIdentity", tenantId="t1"),
            }
        },
    ),
    doc("Workspace", {"vault": {"provider": "azure", "azure": azure_vault(clientId=CLIENT)}}),
    doc("Workspace", {"vault": {"provider": "azure", "azure": azure_vault(type="password")}}),
    doc(
        "Workspace",
        {
            "vault": {
                "provider": "azure",
                "azure": azure_vault(
                    type="clientSecret", tenantId="t", clientId="x", clientSecret="s3cr3t-value"
                ),
            }
        },
    ),
    doc("Workspace", {"git": {"author": {"name": "Bot", "email": "nope"}}}),
    doc("Workspace", {"unknown": True}),
    doc("PolicyPack", {"rules": [{"name": "r", "decision": "approval"}]}),
    doc("PolicyPack", {"rules": [with_(RULE, decision="maybe")]}),
    doc("PolicyPack", {"rules": [with_(RULE, approvals={"groups": ["a"], "count": 0})]}),
    doc("PolicyPack", {"rules": [with_(RULE, match={"kinds": ["Budgett"]})]}),
    doc("PolicyPack", {"redaction": [{"name": "k", "regex": "("}]}),
    doc("Budget", with_(BUDGET, scope={"workspace": True, "connector": "x"})),
    doc("Budget", with_(BUDGET, scope={})),
    doc("Budget", with_(BUDGET, scope={"workspace": False})),
    doc("Budget", with_(BUDGET, limits={})),
    doc("Budget", with_(BUDGET, limits={"cost_usd": -1})),
    doc("Budget", with_(BUDGET, limits={"tokens": "5"})),
    doc("Budget", with_(BUDGET, limits={"tokens": 1.5})),
    doc("Budget", with_(BUDGET, limits={"tokens": True})),
    doc("Budget", with_(BUDGET, period="monthly")),
    doc("Budget", {"scope": {"workspace": True}}),
    doc("Connector", with_(CONNECTOR, version="v1")),
    doc("Connector", with_(CONNECTOR, source={"path": "a", "builtin": "b"})),
    doc("Connector", with_(CONNECTOR, source={"registry": {"name": "acme", "package": "x"}})),
    doc("Registry", {"url": "ftp://r.example/", "root": "sha256:" + "a" * 64}),
    doc("Registry", {"url": "https://r.example/"}),
    doc("Connector", with_(CONNECTOR, digest="md5:abc")),
    doc("Connector", with_(CONNECTOR, egress={"allowHosts": ["http://x.com"]})),
    doc("Connector", with_(CONNECTOR, enabled="yes")),
    doc("Connector", with_(CONNECTOR, limits={"concurrency": 0})),
    doc("SecretRef", {"ref": "github-token"}),
    doc("SecretRef", {"ref": "vault://github/token"}),  # no vault can hold that name
    doc("SecretRef", {"ref": "vault://x", "value": "hunter2"}),
    doc("Blueprint", {"source": {}}),
    doc("Blueprint", {"source": {"builtin": "a", "path": "b"}}),
    doc("Pipeline", {"steps": []}),
    doc("Pipeline", {"steps": [{"name": "a"}]}),
    doc(
        "Pipeline",
        {"steps": [{"name": "a", "skill": "s", "tool": {"connector": "c", "name": "t"}}]},
    ),
    doc("Pipeline", with_(PIPELINE, inputs={"topic": {"type": "date"}})),
    doc("Pipeline", {"steps": [{"name": "a", "skill": "s", "model": MODEL_STEP}]}),
    doc("Pipeline", {"steps": [{"name": "a", "model": with_(MODEL_STEP, maxTokens=0)}]}),
    doc("Pipeline", {"steps": [{"name": "a", "model": {"name": "local", "prompt": "p"}}]}),
    doc("Pipeline", {"steps": [{"name": "a", "model": with_(MODEL_STEP, schema="object")}]}),
    doc("Pipeline", {"steps": [{"name": "a", "model": with_(MODEL_STEP, temperature=0.2)}]}),
    doc("Run", {"inputs": {}}),
    doc("Run", {"pipeline": "p", "inputs": {"Bad Key": 1}}),
    doc("Model", with_(MODEL, api="anthropic")),
    doc("Model", {"api": "openai-chat", "baseUrl": "http://127.0.0.1:8000/v1"}),
    doc("Model", with_(MODEL, baseUrl="ftp://127.0.0.1/v1")),
    doc("Model", with_(MODEL, baseUrl="https://user:pw@api.example/v1")),  # key in the URL
    doc("Model", with_(MODEL, baseUrl="https://api.example/v1?key=abc")),
    doc("Model", with_(MODEL, model="two words")),
    doc("Model", with_(MODEL, apiKey="Not_A_Name")),
    doc("Model", with_(MODEL, price={"inputPerMTok": -1})),
    doc("Model", with_(MODEL, price={"inputPerMTok": "0.1"})),
    doc("Model", with_(MODEL, price={"perCall": 1})),
    doc("Model", with_(MODEL, key="sk-plain-text")),
]


def test_a_model_step_schema_must_be_a_json_schema() -> None:
    # JSON Schema cannot say "this value is a JSON Schema"; the model checks it (load time).
    bad = doc(
        "Pipeline", {"steps": [{"name": "a", "model": with_(MODEL_STEP, schema={"type": 5})}]}
    )
    assert schema_accepts(bad)
    with pytest.raises(ValidationError, match=r"not a valid JSON Schema at type"):
        KINDS["Pipeline"].model_validate(bad)


def model_accepts(document: dict[str, Any]) -> bool:
    model = KINDS.get(document.get("kind", ""))
    if model is None:
        return False
    try:
        model.model_validate(document)
    except ValidationError:
        return False
    return True


def schema_accepts(document: dict[str, Any]) -> bool:
    schema = json.loads((data_dir("schemas") / "resource.schema.json").read_text())
    registry = _registry()
    validator = jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(document)


def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for path in data_dir("schemas").glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@pytest.mark.parametrize("document", VALID, ids=lambda d: f"{d['kind']}")
def test_valid_samples_pass_both(document: dict[str, Any]) -> None:
    assert model_accepts(document)
    assert schema_accepts(document)


@pytest.mark.parametrize("document", INVALID, ids=lambda d: f"{d.get('kind')}")
def test_invalid_samples_fail_both(document: dict[str, Any]) -> None:
    assert not model_accepts(document)
    assert not schema_accepts(document)


def test_every_kind_has_valid_and_invalid_samples() -> None:
    for kind in KINDS:
        assert any(d["kind"] == kind for d in VALID), kind
        assert any(d.get("kind") == kind for d in INVALID), kind
