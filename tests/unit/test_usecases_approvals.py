"""The approvals use cases, called directly on a real workspace (real git, real state database).

These assert on the typed results and on reason kinds; the printed words are the functional
tests' business (tests/func/test_approvals.py and others)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import keys
from reconciler.approvals import records
from reconciler.approvals.records import Record
from reconciler.errors import ClonedError, ExitCode, UsageError
from reconciler.usecases import approvals
from tests.conftest import commit_all, git, write
from tests.func.engine_helpers import Team, applied_team

EARLY = "2026-01-01T00:00:00+00:00"
LATE = "2026-01-09T00:00:00+00:00"


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    """The team workspace, committed (state ignored) and applied."""
    return applied_team(repo, tmp_path)


def as_person(monkeypatch: pytest.MonkeyPatch, team: Team, who: str) -> None:
    """Sign with `who`'s keys (their CLONED_HOME), as `--key NAME` finds them."""
    monkeypatch.setenv("CLONED_HOME", str(team.homes[who]))


def raise_budget(team: Team, to: str = "80") -> str:
    """Edit the monthly budget (a gated change) and let apply open its request."""
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", f"cost_usd: {to}")
    assert team.run("apply").code == int(ExitCode.APPROVALS_PENDING)
    (item,) = approvals.list_requests(path=team.repo).shown
    return item.request.id


def sign(team: Team, request_id: str, who: str = "alice") -> approvals.SignedVerdict:
    return approvals.approve(path=team.repo, request_id=request_id, key=who)


def test_nothing_to_list_before_a_gated_change(team: Team) -> None:
    listed = approvals.list_requests(path=team.repo)
    assert listed.requests == ()
    assert listed.to_json() == []
    assert listed.exit_code is ExitCode.OK


def test_an_approval_counts_and_shows_as_counting(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "alice")
    signed = approvals.approve(
        path=team.repo, request_id=request[:6], key="alice", comment="fine", ttl_days=2
    )
    assert signed.record.verdict == "approve"
    assert signed.record.approver == "alice"
    assert signed.path.is_file()
    assert signed.notes == ()
    assert signed.exit_code is ExitCode.OK
    assert signed.to_json()["record"]["request_id"] == request

    shown = approvals.show_request(path=team.repo, request_id=request[:4])
    assert shown.item.status == "approved"
    (verdict,) = shown.item.evaluation.verdicts if shown.item.evaluation else ()
    assert verdict.counts and verdict.reason is None
    assert shown.to_json()["approvals"][0]["reason"] is None

    verified = approvals.verify(path=team.repo)
    assert (verified.sound, verified.lapsed, verified.invalid) == (1, (), ())
    assert verified.exit_code is ExitCode.OK


@pytest.mark.parametrize("days", [0.0, -1.0, 366.0, math.inf, math.nan])
def test_a_ttl_outside_a_year_is_refused_before_anything_is_signed(
    team: Team, monkeypatch: pytest.MonkeyPatch, days: float
) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "alice")
    with pytest.raises(UsageError, match="--ttl-days"):
        approvals.approve(path=team.repo, request_id=request, key="alice", ttl_days=days)
    assert not (team.repo / ".cloned" / "approvals").exists()


def test_show_needs_exactly_one_match(team: Team) -> None:
    raise_budget(team)
    with pytest.raises(ClonedError, match="no approval request"):
        approvals.show_request(path=team.repo, request_id="nope")


def test_an_expired_approval_lapses_and_is_no_error(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "alice")
    monkeypatch.setenv("CLONED_NOW", EARLY)
    approvals.approve(path=team.repo, request_id=request, key="alice", ttl_days=7)
    monkeypatch.setenv("CLONED_NOW", LATE)

    (item,) = approvals.list_requests(path=team.repo).requests
    assert item.status == "expired"
    assert item.evaluation is not None
    (verdict,) = item.evaluation.verdicts
    assert verdict.reason is not None
    assert verdict.reason.kind == "expired" and verdict.reason.lapsed

    verified = approvals.verify(path=team.repo)
    assert [f.reason.kind for f in verified.lapsed] == ["expired"]
    assert verified.invalid == ()
    assert verified.exit_code is ExitCode.OK
    assert verified.to_json()["valid"] is True


def test_an_edited_record_is_forged_and_fails_verify(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "alice")
    signed = sign(team, request)
    data = json.loads(signed.path.read_text())
    signed.path.write_text(json.dumps({**data, "comment": "edited"}))

    verified = approvals.verify(path=team.repo)
    assert [f.reason.kind for f in verified.invalid] == ["forged"]
    assert verified.exit_code is ExitCode.ERROR
    assert verified.to_json()["exit_code"] == 1
    (item,) = approvals.list_requests(path=team.repo).requests
    assert item.status == "pending"


def resign(path: Path, key: str, **fields: str) -> None:
    """Rewrite the record at `path` with `fields` changed, signed again with the key file `key`
    (so the signature verifies and a later check must catch it)."""
    record = records.parse(path.read_bytes(), path.name)
    assert isinstance(record, Record)
    changed = replace(record, **fields, public_key=keys.load_signer(key).public_key)
    signed = replace(changed, signature=keys.load_signer(key).sign(changed.signed_payload()))
    path.write_bytes(records.render(signed))


@pytest.mark.parametrize(
    ("who", "fields", "kind"),
    [
        ("mallory", {"approver": "mallory"}, "not_approver"),
        ("mallory", {}, "wrong_key"),
        ("alice", {"workspace": "elsewhere"}, "other_workspace"),
        ("alice", {"change_hash": "sha256:" + "0" * 64}, "other_change"),
    ],
)
def test_a_record_that_signs_what_it_should_not_is_invalid(
    team: Team,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    who: str,
    fields: dict[str, str],
    kind: str,
) -> None:
    request = raise_budget(team)
    monkeypatch.setenv("CLONED_HOME", str(tmp_path / "home-mallory"))
    mallory = keys.generate("mallory").private_path
    as_person(monkeypatch, team, "alice")
    signed = sign(team, request)
    resign(signed.path, str(mallory) if who == "mallory" else "alice", **fields)

    verified = approvals.verify(path=team.repo)
    assert [f.reason.kind for f in verified.invalid] == [kind]
    assert verified.exit_code is ExitCode.ERROR


def test_a_file_that_is_no_record_is_malformed(team: Team) -> None:
    write(team.repo, ".cloned/approvals/abc/alice.json", "{not json")
    verified = approvals.verify(path=team.repo)
    assert [f.reason.kind for f in verified.invalid] == ["malformed"]
    assert verified.exit_code is ExitCode.ERROR


def test_a_viewer_cannot_approve_and_nothing_is_written(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "carol")
    with pytest.raises(ClonedError, match="could not count"):
        sign(team, request, "carol")
    assert not (team.repo / ".cloned" / "approvals").exists()


def test_an_applied_approval_is_spent(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "alice")
    sign(team, request)
    assert team.run("apply").code == 0

    listed = approvals.list_requests(path=team.repo)
    assert listed.shown == ()
    (item,) = approvals.list_requests(path=team.repo, include_all=True).shown
    assert item.status == "approved"
    assert item.evaluation is not None
    assert [v.reason.kind for v in item.evaluation.verdicts if v.reason] == ["spent"]
    assert [f.reason.kind for f in approvals.verify(path=team.repo).lapsed] == ["spent"]


def test_a_denial_blocks(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    request = raise_budget(team)
    as_person(monkeypatch, team, "bob")
    denied = approvals.deny(path=team.repo, request_id=request, key="bob", comment="no")
    assert denied.record.verdict == "deny"
    (item,) = approvals.list_requests(path=team.repo).requests
    assert item.status == "denied"
    assert item.missing == ()


def test_a_branch_is_verified_against_its_base(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    git("checkout", "-q", "-b", "raise", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(team.repo, "Raise the monthly budget")

    waiting = approvals.verify(path=team.repo, base="main")
    (gate,) = waiting.gates or ()
    assert gate.status == "pending"
    assert waiting.exit_code is ExitCode.APPROVALS_PENDING
    assert waiting.to_json()["changes"][0]["request"] == gate.request

    as_person(monkeypatch, team, "alice")
    signed = approvals.approve(path=team.repo, request_id=gate.request, key="alice", base="main")
    assert signed.base == "main"
    unseen = approvals.verify(path=team.repo, base="main")
    assert unseen.uncommitted == (str(signed.path.relative_to(team.repo)),)
    assert unseen.exit_code is ExitCode.APPROVALS_PENDING

    commit_all(team.repo, "Approve the raise")
    approved = approvals.verify(path=team.repo, base="main")
    assert approved.uncommitted == ()
    assert [g.approved_by for g in approved.gates or ()] == [("alice",)]
    assert approved.exit_code is ExitCode.OK

    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 90")
    commit_all(team.repo, "Raise it further")
    stale = approvals.verify(path=team.repo, base="main")
    assert [f.reason.kind for f in stale.lapsed] == ["stale"]
    assert stale.invalid == ()
    assert stale.exit_code is ExitCode.APPROVALS_PENDING
