"""What the real CLI writes matches schemas/ and the digest rules of specs/*.md.

Each test drives `cloned` in a temporary git repository, validates every output and file it
produces against its JSON Schema (plan, saved plan, apply result, cloned.lock, approval records,
the request listing), recomputes the digests the specs define, and checks that a mutated
document fails, so the schemas are neither stale nor vacuous.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from reconciler.data import data_dir
from tests.conftest import cloned, git
from tests.func.engine_helpers import Team, make_team

BASE = "https://cloned.dev/schemas/v1/"


def _registry() -> Registry:
    resources = []
    for path in sorted(data_dir("schemas").glob("*.schema.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validator(ref: str) -> Draft202012Validator:
    """A validator for `ref` (a schema file, optionally with a #/$defs/... fragment)."""
    return Draft202012Validator(
        {"$ref": BASE + ref},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


PLAN = validator("plan.schema.json")
APPLY_RESULT = validator("plan.schema.json#/$defs/applyResult")
LOCK = validator("lock.schema.json")
RECORD = validator("approval-record.schema.json")
REQUEST = validator("approval-record.schema.json#/$defs/request")
REQUEST_LIST = validator("approval-record.schema.json#/$defs/requestList")


def assert_valid(schema: Draft202012Validator, document: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in schema.iter_errors(document)]
    assert not errors, "\n".join(errors)


def assert_rejects(
    schema: Draft202012Validator, document: Any, mutate: Callable[[Any], None]
) -> None:
    """A copy of `document`, changed by `mutate`, fails `schema`."""
    changed = copy.deepcopy(document)
    mutate(changed)
    assert not schema.is_valid(changed), "the schema accepts a broken document"


def digest(value: Any) -> str:
    """The specs' digest, written out independently of reconciler.canonical."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def assert_plan_digests(plan: dict[str, Any]) -> None:
    """desired_digest, actual_digest and plan_id are what specs/plan-format.md says."""
    assert plan["desired_digest"] == digest(plan["desired_resources"])
    assert plan["actual_digest"] == digest(plan["actual_resources"])
    outside = {"plan_id", "created_at", "generated_by", "actual_source", "base", "head"}
    identity = {key: value for key, value in plan.items() if key not in outside}
    identity["changes"] = [
        {key: value for key, value in change.items() if key not in {"approvals", "in_branch"}}
        for change in plan["changes"]
    ]
    assert plan["plan_id"] == digest(identity)


def assert_canonical_file(path: Path) -> dict[str, Any]:
    """The file is sorted, two-space indented JSON with a final newline; return its data."""
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return data


def plan_of(team: Team, *args: str) -> dict[str, Any]:
    result = team.run("plan", "--json", *args)
    assert result.code == 0, result.err
    plan: dict[str, Any] = json.loads(result.out)
    assert_valid(PLAN, plan)
    assert_plan_digests(plan)
    return plan


def read_lock(team: Team) -> dict[str, Any]:
    lock = assert_canonical_file(team.repo / ".cloned" / "cloned.lock")
    assert_valid(LOCK, lock)
    for entry in lock["resources"].values():
        assert entry["digest"] == digest(entry["state"])
    return lock


def requests(team: Team) -> list[dict[str, Any]]:
    listed = team.requests()
    assert_valid(REQUEST_LIST, listed)
    return listed  # type: ignore[return-value]


def by_id(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {request["id"]: request for request in listed}


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return make_team(repo, tmp_path)


def test_plan_saved_plan_apply_result_and_lock_follow_their_schemas(
    team: Team, tmp_path: Path
) -> None:
    plan = plan_of(team)
    assert (plan["bootstrap"], plan["actual_source"], plan["policy_source"]) == (
        True,
        "empty",
        "desired (bootstrap)",
    )
    assert [change["address"] for change in plan["changes"]] == [
        "workspace.team",
        "budget.daily",
        "budget.monthly",
    ]
    create = plan["changes"][2]
    assert {"path": "spec.limits.cost_usd", "after": 50.0} in create["diff"]
    assert all("before" not in entry for entry in create["diff"])

    saved = team.run("plan", "--out", "tonight.plan")
    assert saved.code == 0, saved.err
    data = assert_canonical_file(team.repo / "tonight.plan")
    assert_valid(PLAN, data)
    assert data["plan_id"] == plan["plan_id"]
    shown = team.run("show", "--json", "tonight.plan")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out) == data

    applied = team.run("apply", "tonight.plan", "--json")
    assert applied.code == 0, applied.out + applied.err
    result = json.loads(applied.out)
    assert_valid(APPLY_RESULT, result)
    assert result["plan_id"] == plan["plan_id"]
    assert {outcome["status"] for outcome in result["outcomes"]} == {"applied"}
    assert result["lock_written"] is True

    lock = read_lock(team)
    assert {a: e["digest"] for a, e in lock["resources"].items()} == plan["desired_resources"]

    # A fresh clone has no state database: it plans against the committed lock file.
    git("add", ".cloned", cwd=team.repo)
    git("commit", "-q", "-m", "Apply", cwd=team.repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(team.repo), str(clone), cwd=tmp_path)
    fresh = cloned("plan", "--json", cwd=clone, env={"CLONED_HOME": str(team.homes["operator"])})
    assert fresh.code == 0, fresh.err
    again = json.loads(fresh.out)
    assert_valid(PLAN, again)
    assert (again["actual_source"], again["policy_source"], again["changes"]) == (
        "lock",
        "applied",
        [],
    )
    assert again["actual_resources"] == plan["desired_resources"]

    assert_rejects(PLAN, plan, lambda p: p.pop("plan_id"))
    assert_rejects(PLAN, plan, lambda p: p["changes"][0].update(action="modify"))
    assert_rejects(PLAN, plan, lambda p: p["changes"][0]["diff"][0].pop("after"))
    assert_rejects(PLAN, plan, lambda p: p.update(bootstrap=False))
    assert_rejects(APPLY_RESULT, result, lambda r: r["outcomes"][0].update(status="done"))
    assert_rejects(LOCK, lock, lambda k: k["resources"]["budget.monthly"].update(digest="md5:0"))
    assert_rejects(LOCK, lock, lambda k: k["resources"]["budget.monthly"]["state"].update(x=1))
    assert_rejects(
        LOCK,
        lock,
        lambda k: k["resources"]["budget.monthly"]["state"]["spec"].update(period="year"),
    )


def test_a_gated_change_binds_both_states_and_a_stale_plan_is_refused(team: Team) -> None:
    assert team.run("apply").code == 0
    before = read_lock(team)["resources"]["budget.monthly"]["state"]
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")

    plan = plan_of(team)
    (change,) = plan["changes"]
    assert (change["action"], change["decision"], change["risk"]) == (
        "update",
        "approval",
        "medium",
    )
    assert [rule["rule"] for rule in change["rules"]] == ["baseline/budget-raise"]
    assert change["diff"] == [{"path": "spec.limits.cost_usd", "before": 50.0, "after": 80.0}]
    after = copy.deepcopy(before)
    after["spec"]["limits"]["cost_usd"] = 80.0
    assert plan["desired_resources"]["budget.monthly"] == digest(after)
    assert change["change_hash"] == digest(
        {"address": "budget.monthly", "action": "update", "before": before, "after": after}
    )

    assert team.run("plan", "--out", "raise.plan").code == 0
    team.edit(".cloned/budgets.yaml", "calls: 1000", "calls: 1200")
    lock_text = (team.repo / ".cloned" / "cloned.lock").read_text()
    stale = team.run("apply", "raise.plan")
    assert stale.code == 1
    assert (
        "the saved plan is stale: the desired state changed since the plan was made "
        "(budget.monthly modified)"
    ) in stale.err
    assert (team.repo / ".cloned" / "cloned.lock").read_text() == lock_text

    team.edit(".cloned/budgets.yaml", "calls: 1200", "calls: 1000")
    pending = team.run("apply", "raise.plan", "--json")
    assert pending.code == 3, pending.out + pending.err
    result = json.loads(pending.out)
    assert_valid(APPLY_RESULT, result)
    (outcome,) = result["outcomes"]
    assert outcome["status"] == "pending"
    assert outcome["request"] == change["change_hash"].removeprefix("sha256:")[:12]


def test_approval_records_and_the_request_listing_follow_their_schemas(team: Team) -> None:
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    assert team.run("apply").code == 3
    (first,) = requests(team)
    assert first["id"] == first["change_hash"].removeprefix("sha256:")[:12]
    assert (first["status"], first["rule"], first["approvals"]) == (
        "pending",
        "baseline/budget-raise",
        [],
    )
    assert first["missing"] == ["baseline/budget-raise: 1 more from admins"]

    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 90")
    assert team.run("apply").code == 3
    listed = by_id(requests(team))
    assert listed[first["id"]]["status"] == "superseded"
    second = next(r for r in listed.values() if r["status"] == "pending")
    assert listed[first["id"]]["superseded_by"] == second["id"]

    approved = team.run(
        "approvals", "approve", second["id"], "--key", "alice", "--comment", "Q4", who="alice"
    )
    assert approved.code == 0, approved.err
    path = team.repo / ".cloned" / "approvals" / second["id"] / "alice.json"
    record = assert_canonical_file(path)
    assert_valid(RECORD, record)
    assert (record["verdict"], record["workspace"], record["approver"]) == (
        "approve",
        "team",
        "alice",
    )
    assert record["change_hash"] == second["change_hash"]
    assert record["public_key"].split()[:2] == team.keys["alice"].split()[:2]
    assert_signed(record)

    shown = team.run("approvals", "show", second["id"], "--json")
    assert shown.code == 0, shown.err
    judged = json.loads(shown.out)
    assert_valid(REQUEST, judged)
    assert judged["status"] == "approved"
    assert judged["approvals"] == [
        {
            "approver": "alice",
            "verdict": "approve",
            "signed_at": record["signed_at"],
            "expires_at": record["expires_at"],
            "counts": True,
            "reason": None,
            "file": f".cloned/approvals/{second['id']}/alice.json",
        }
    ]
    assert team.run("apply").code == 0
    assert by_id(requests(team))[second["id"]]["status"] == "approved"

    team.edit(".cloned/budgets.yaml", "calls: 1000", "calls: 2000")
    assert team.run("apply").code == 3
    third = next(r for r in requests(team) if r["status"] == "pending")
    denied = team.run("approvals", "deny", third["id"], "--key", "bob", who="bob")
    assert denied.code == 0, denied.err
    refusal = assert_canonical_file(team.repo / ".cloned" / "approvals" / third["id"] / "bob.json")
    assert_valid(RECORD, refusal)
    assert refusal["verdict"] == "deny"
    assert_signed(refusal)
    final = by_id(requests(team))
    assert [final[r]["status"] for r in (first["id"], second["id"], third["id"])] == [
        "superseded",
        "approved",
        "denied",
    ]

    assert_rejects(RECORD, record, lambda r: r.update(verdict="maybe"))
    assert_rejects(RECORD, record, lambda r: r.pop("signature"))
    assert_rejects(RECORD, record, lambda r: r.update(request_id="e919"))
    assert_rejects(REQUEST, judged, lambda r: r.update(status="open"))
    assert_rejects(REQUEST, judged, lambda r: r["approvals"][0].update(reason="expired"))
    assert_rejects(REQUEST_LIST, [judged], lambda rs: rs[0].pop("change_hash"))


def assert_signed(record: dict[str, Any]) -> None:
    """The signature is Ed25519 by `public_key` over the canonical JSON of every other field."""
    key = load_ssh_public_key(record["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)
    payload = {name: value for name, value in record.items() if name != "signature"}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key.verify(base64.b64decode(record["signature"]), text.encode())
