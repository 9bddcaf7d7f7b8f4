"""Attacker review (hardening, turn 3): a respelled signature is not a fresh approval, a saved
plan shows what it applies, and hostile files are clear errors, never an internal error."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.canonical import canonical_json
from tests.conftest import Result, commit_all
from tests.func.engine_helpers import Team, applied_team

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def respell(signature: str) -> str:
    """The same signature bytes spelled differently: set the unused low bits of the last
    base64 character before the padding (a 64-byte value leaves 4 of them unused)."""
    body = signature.rstrip("=")
    last = B64.index(body[-1])
    other = body[:-1] + B64[last | 1 if last & 1 == 0 else last ^ 1] + signature[len(body) :]
    assert base64.b64decode(other) == base64.b64decode(signature)
    assert other != signature
    return other


# --- 1. A spent approval does not count again under another spelling of its signature ---------


def spent_by_bob(team: Team) -> tuple[str, Path]:
    """Raise (approved by bob, applied), lower, raise again: bob's record is spent."""
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(team.repo, "Raise")
    assert team.run("apply").code == 3
    (request,) = [str(r["id"]) for r in team.requests()]
    assert team.run("approvals", "approve", request, "--key", "bob", who="bob").code == 0
    commit_all(team.repo, "Approve")
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    commit_all(team.repo, "Lower")
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(team.repo, "Raise again")
    again = team.run("apply")
    assert again.code == 3, again.out + again.err
    return request, team.repo / ".cloned" / "approvals" / request / "bob.json"


def test_a_respelled_signature_is_not_a_fresh_approval(repo: Path, tmp_path: Path) -> None:
    team = applied_team(repo, tmp_path)
    request, path = spent_by_bob(team)
    record = json.loads(path.read_text())
    record["signature"] = respell(record["signature"])
    path.write_text(json.dumps(record, indent=2))
    rel = f".cloned/approvals/{request}/bob.json"
    commit_all(team.repo, "Respell bob's signature")
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    verify = team.run("approvals", "verify")
    assert f"{rel}: not a valid approval record (signature must be base64 in its one canonical" in (
        verify.out
    ), verify.out
    based = team.run("approvals", "verify", "--base", "HEAD~1")
    assert based.code != 0, based.out + based.err
    assert f"{rel}: not a valid approval record (signature must be base64" in based.out, based.out
    assert "budget.monthly" in based.out and "pending" in based.out


def test_a_record_id_names_the_signature_bytes_not_their_spelling() -> None:
    from reconciler.approvals.records import Record

    fields = {
        "format_version": 1,
        "verdict": "approve",
        "workspace": "team",
        "request_id": "0" * 12,
        "change_hash": "sha256:" + "0" * 64,
        "address": "budget.monthly",
        "approver": "bob",
        "public_key": "ssh-ed25519 AAAA",
        "signed_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-08T00:00:00Z",
        "comment": "",
    }
    signature = base64.b64encode(bytes(range(64))).decode()
    one = Record(**fields, signature=signature)  # type: ignore[arg-type]
    other = Record(**fields, signature=respell(signature))  # type: ignore[arg-type]
    assert one.id == other.id


def test_a_respelled_checkpoint_signature_does_not_verify(repo: Path, tmp_path: Path) -> None:
    team = applied_team(repo, tmp_path)
    path = team.repo / ".cloned" / "audit" / "checkpoints.jsonl"
    content = path.read_text().splitlines()
    assert team.run("audit", "verify").code == 0
    checkpoint = json.loads(content[-1])
    checkpoint["signature"] = respell(checkpoint["signature"])
    content[-1] = canonical_json(checkpoint).decode()
    path.write_text("\n".join(content) + "\n")
    verify = team.run("audit", "verify")
    assert verify.code == 1, verify.out + verify.err
    assert f"(.cloned/audit/checkpoints.jsonl line {len(content)}): signature does not verify" in (
        verify.err
    ), verify.err


# --- 2. A saved plan shows what it applies ----------------------------------------------------


def lower_calls(change: dict[str, Any]) -> None:
    (entry,) = change["diff"]
    entry["after"] = 10


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "diff": lambda plan: lower_calls(plan["changes"][0]),
    "decision": lambda plan: plan["changes"][0].update(decision="deny"),
    "risk": lambda plan: plan["changes"][0].update(risk="low"),
    "origin": lambda plan: plan["changes"][0].update(origin=".cloned/other.yaml:1"),
    "summary": lambda plan: plan["summary"].update(update=0, create=1),
}


@pytest.fixture
def saved(repo: Path, tmp_path: Path) -> Team:
    """An applied team with a saved plan that raises the monthly call limit."""
    team = applied_team(repo, tmp_path)
    team.edit(".cloned/budgets.yaml", "calls: 1000}", "calls: 1000000}")
    assert team.run("plan", "--out", "raise.plan").code == 0
    plan = json.loads((team.repo / "raise.plan").read_text())
    (change,) = plan["changes"]
    assert change["diff"] == [{"path": "spec.limits.calls", "before": 1000, "after": 1000000}]
    return team


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_plan_file_is_refused_by_show_and_apply(saved: Team, edit: str) -> None:
    path = saved.repo / "raise.plan"
    plan = json.loads(path.read_text())
    EDITS[edit](plan)
    path.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    lock = (saved.repo / ".cloned" / "cloned.lock").read_text()
    refusal = (
        "Error: raise.plan: not the plan Cloned wrote (its content does not match its id); "
        "run cloned plan --out raise.plan again"
    )
    for args in (("show", "raise.plan"), ("show", "--json", "raise.plan"), ("apply", "raise.plan")):
        result = saved.run(*args)
        assert result.code == 1, (args, result.out, result.err)
        assert refusal in result.err, (args, result.err)
        assert "internal error" not in result.err
    assert (saved.repo / ".cloned" / "cloned.lock").read_text() == lock


def test_an_unedited_plan_file_shows_and_applies(saved: Team) -> None:
    shown = saved.run("show", "raise.plan")
    assert shown.code == 0, shown.err
    assert "spec.limits.calls: 1000 -> 1000000" in shown.out, shown.out
    planned = json.loads(saved.run("plan", "--json").out)
    assert planned["plan_id"] == json.loads((saved.repo / "raise.plan").read_text())["plan_id"]
    applied = saved.run("apply", "raise.plan")
    assert applied.code in (0, 3), applied.out + applied.err
    assert "not the plan Cloned wrote" not in applied.err


# --- 3. Hostile files and flags are clear errors, never an internal error ----------------------


def no_internal_error(result: Result) -> None:
    assert "internal error" not in result.err, result.err
    assert "Traceback" not in result.err, result.err


def clone_without_state(team: Team, tmp_path: Path) -> Team:
    clone = tmp_path / "clone"
    shutil.copytree(team.repo, clone, ignore=shutil.ignore_patterns("state"))
    return Team(clone, team.homes, team.keys)


def segments(team: Team) -> Path:
    return team.repo / ".cloned" / "audit" / "segments"


def test_a_deeply_nested_segment_line_is_not_a_crash(repo: Path, tmp_path: Path) -> None:
    team = clone_without_state(applied_team(repo, tmp_path), tmp_path)
    (segment,) = sorted(segments(team).iterdir())
    with segment.open("a") as handle:
        handle.write("[" * 100000 + "]" * 100000 + "\n")
    for args in (("plan",), ("approvals", "verify"), ("audit", "log")):
        result = team.run(*args)
        no_internal_error(result)
        assert result.code in (0, 1), (args, result.out, result.err)
    verify = team.run("audit", "verify")
    no_internal_error(verify)
    assert verify.code == 1, verify.out + verify.err
    assert segment.name in verify.out + verify.err


def test_a_deeply_nested_spent_payload_is_not_a_crash(repo: Path, tmp_path: Path) -> None:
    team = clone_without_state(applied_team(repo, tmp_path), tmp_path)
    event = {"seq": 99, "type": "approval.spent", "payload": "[" * 100000 + "]" * 100000}
    (segment,) = sorted(segments(team).iterdir())
    with segment.open("a") as handle:
        handle.write(json.dumps(event) + "\n")
    for args in (("plan",), ("approvals", "verify")):
        result = team.run(*args)
        no_internal_error(result)
        assert result.code == 0, (args, result.out, result.err)


def self_loop(team: Team) -> str:
    loop = segments(team) / "00000099-00000099.jsonl"
    loop.symlink_to(loop.name)
    return f".cloned/audit/segments/{loop.name}"


def test_a_segment_that_links_to_itself_is_named(repo: Path, tmp_path: Path) -> None:
    team = applied_team(repo, tmp_path)
    clone = clone_without_state(team, tmp_path)
    for where, commands in (
        (team, [("audit", "verify"), ("apply",)]),
        (clone, [("plan",), ("approvals", "verify"), ("audit", "verify"), ("audit", "log")]),
    ):
        rel = self_loop(where)
        for args in commands:
            result = where.run(*args)
            no_internal_error(result)
            assert result.code == 1, (args, result.out, result.err)
            assert f"{rel}: cannot be read (" in result.out + result.err, (args, result.err)
    # With the state database, the log is read from it: the committed files are not needed.
    assert team.run("audit", "log").code == 0


def test_an_out_of_range_since_is_refused(repo: Path, tmp_path: Path) -> None:
    team = applied_team(repo, tmp_path)
    for where in (team, clone_without_state(team, tmp_path)):
        result = where.run("audit", "log", "--since", "99999999999999999999999")
        no_internal_error(result)
        assert result.code == 1, result.out + result.err
        assert "--since: 99999999999999999999999 is out of range" in result.err, result.err
    assert team.run("audit", "log", "--since", "1").code == 0


def test_an_absurd_pid_in_the_status_file_is_not_a_live_process(repo: Path, tmp_path: Path) -> None:
    team = applied_team(repo, tmp_path)
    assert team.run("reconcile", "--once").code == 0
    path = team.repo / ".cloned" / "state" / "reconcile.json"
    status = json.loads(path.read_text())
    for pid in (100000000000000000000, -1, 0):
        path.write_text(json.dumps({**status, "pid": pid, "state": "running"}))
        shown = team.run("reconcile", "--status")
        no_internal_error(shown)
        assert shown.code == 1, shown.out + shown.err
        assert "status.pid" in shown.err, shown.err
        once = team.run("reconcile", "--once")
        no_internal_error(once)
        assert once.code == 0, once.out + once.err
    assert team.run("reconcile", "--status").code == 0


def test_pid_alive_says_no_for_what_cannot_be_a_process() -> None:
    from reconciler.state.lock import pid_alive

    assert not pid_alive(100000000000000000000)
    assert not pid_alive(-1)
    assert not pid_alive(0)
    assert pid_alive(os.getpid())


def test_a_saved_plan_whose_resource_moved_is_stale_and_says_why(saved: Team) -> None:
    path = saved.repo / ".cloned" / "budgets.yaml"
    path.write_text("# Limits reviewed every quarter.\n" + path.read_text())
    stale = saved.run("apply", "raise.plan")
    assert stale.code == 1, stale.out + stale.err
    assert (
        "the saved plan is stale: the desired resources moved in their files since the plan was "
        "made (budget.monthly now at .cloned/budgets.yaml:2)"
    ) in stale.err, stale.err
