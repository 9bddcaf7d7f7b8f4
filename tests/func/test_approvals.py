"""The approval story and every refusal: forged, replayed, expired, wrong group, self, changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import git, write
from tests.func.engine_helpers import Team, make_team

STRICT_OVERLAY = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata:
  name: two-person
spec:
  extends: baseline
  rules:
    - name: budget-raise-two-people
      match: {kinds: [Budget], actions: [update], fields: ["spec.limits.*"], grows: true}
      decision: approval
      approvals: {count: 2, groups: [admins], distinct: true, excludeAuthor: true}
"""


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    team = make_team(repo, tmp_path)
    assert team.run("apply").code == 0
    return team


def raise_budget(team: Team, to: str = "80") -> str:
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", f"cost_usd: {to}")
    result = team.run("apply")
    assert result.code == 3, result.out + result.err
    pending = [r for r in team.requests() if r["status"] == "pending"]
    assert len(pending) == 1
    return str(pending[0]["id"])


def test_approve_then_apply(team: Team) -> None:
    request = raise_budget(team)
    shown = team.run("approvals", "show", request)
    assert "rule baseline/budget-raise: 1 from admins" in shown.out
    assert "~ spec.limits.cost_usd: 50.0 -> 80.0" in shown.out
    approved = team.run("approvals", "approve", request, "--key", "alice", who="alice")
    assert approved.code == 0, approved.err
    record = team.repo / ".cloned" / "approvals" / request / "alice.json"
    assert record.is_file()
    assert team.run("approvals", "verify").code == 0
    applied = team.run("apply")
    assert applied.code == 0, applied.out
    assert "budget.monthly (update) applied: approved by alice" in applied.out
    assert team.run("plan", "--detailed-exitcode").code == 0
    (done,) = team.requests("--all")
    assert done["status"] == "approved"


def test_a_denial_blocks_the_change(team: Team) -> None:
    request = raise_budget(team)
    denied = team.run(
        "approvals", "deny", request, "--key", "bob", "--comment", "too much", who="bob"
    )
    assert denied.code == 0, denied.err
    result = team.run("apply")
    assert result.code == 4
    assert "budget.monthly (update) denied by an approver: denied by bob" in result.out


def test_forged_record_does_not_count(team: Team) -> None:
    request = raise_budget(team)
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    path = team.repo / ".cloned" / "approvals" / request / "alice.json"
    record = json.loads(path.read_text())
    record["comment"] = "edited after signing"
    path.write_text(json.dumps(record))
    assert team.run("apply").code == 3
    verify = team.run("approvals", "verify")
    assert verify.code == 1
    assert (
        f".cloned/approvals/{request}/alice.json: the signature does not verify "
        "(forged or edited record)"
    ) in verify.out


def test_key_not_listed_in_the_applied_workspace_cannot_approve(team: Team, tmp_path: Path) -> None:
    request = raise_budget(team)
    from tests.conftest import cloned

    mallory_home = tmp_path / "home-mallory"
    cloned("keys", "generate", "mallory", env={"CLONED_HOME": str(mallory_home)})
    team.homes["mallory"] = mallory_home
    refused = team.run("approvals", "approve", request, "--key", "mallory", who="mallory")
    assert refused.code == 1
    assert "this key is not an approver in the applied Workspace 'team'" in refused.err


def test_wrong_group_is_refused(team: Team) -> None:
    request = raise_budget(team)
    refused = team.run("approvals", "approve", request, "--key", "carol", who="carol")
    assert refused.code == 1
    assert (
        'this approve could not count: "carol" is not in admins, '
        "which baseline/budget-raise requires" in refused.err
    )


def test_expired_approval_does_not_count(team: Team) -> None:
    request = raise_budget(team)
    early = {"CLONED_NOW": "2026-01-01T00:00:00+00:00"}
    late = {"CLONED_NOW": "2026-01-09T00:00:00+00:00"}
    signed = team.run("approvals", "approve", request, "--key", "alice", who="alice", env=early)
    assert signed.code == 0
    result = team.run("apply", env=late)
    assert result.code == 3
    (listed,) = [r for r in team.requests() if r["id"] == request]
    assert listed["approvals"][0]["reason"] == "expired at 2026-01-08T00:00:00Z"


def test_a_changed_change_supersedes_its_request_and_old_approvals(team: Team) -> None:
    first = raise_budget(team, "80")
    assert team.run("approvals", "approve", first, "--key", "alice", who="alice").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 90")
    result = team.run("apply")
    assert result.code == 3
    everything = {r["id"]: r for r in team.requests("--all")}
    second = next(r for r in everything.values() if r["status"] == "pending")
    assert everything[first]["status"] == "superseded"
    assert everything[first]["superseded_by"] == second["id"]
    stale = team.run("approvals", "approve", first, "--key", "bob", who="bob")
    assert stale.code == 1
    assert f"request {first} was superseded by {second['id']}" in stale.err


def test_replayed_approval_for_another_change_does_not_count(team: Team) -> None:
    first = raise_budget(team, "80")
    assert team.run("approvals", "approve", first, "--key", "alice", who="alice").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 90")
    assert team.run("apply").code == 3
    second = next(r["id"] for r in team.requests() if r["status"] == "pending")
    folder = team.repo / ".cloned" / "approvals"
    shutil.copytree(folder / first, folder / str(second))
    record = json.loads((folder / str(second) / "alice.json").read_text())
    record["request_id"] = second
    (folder / str(second) / "alice.json").write_text(json.dumps(record))
    assert team.run("apply").code == 3
    replay = (folder / str(second) / "alice.json").read_text()
    record["signature"] = json.loads(replay)["signature"]
    verify = team.run("approvals", "verify")
    assert verify.code == 1
    assert "the signature does not verify" in verify.out


def test_two_person_rule_does_not_count_the_author(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path, packs="[baseline, two-person]")
    write(team.repo, ".cloned/policy.yaml", STRICT_OVERLAY)
    write(team.repo, ".gitignore", ".cloned/state/\n")
    git("add", "-A", cwd=team.repo)
    git("commit", "-q", "-m", "Team workspace", cwd=team.repo)
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    # alice signs the commit that makes the change, so alice is the change's author (whoever
    # runs the apply that opens the request).
    git("add", "-A", cwd=team.repo)
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={team.homes['alice']}/keys/alice"]
    git(*signing, "commit", "-q", "-S", "-m", "Raise", cwd=team.repo)
    assert team.run("apply").code == 3
    (request,) = [str(r["id"]) for r in team.requests()]
    own = team.run("approvals", "approve", request, "--key", "alice", who="alice")
    assert own.code == 0, own.err
    assert (
        "Note: it does not count everywhere: two-person/budget-raise-two-people does not let "
        "the change's author (alice) approve it."
    ) in own.out
    assert team.run("approvals", "approve", request, "--key", "bob", who="bob").code == 0
    still = team.run("apply")
    assert still.code == 3
    assert "two-person/budget-raise-two-people: 1 more from admins" in still.out


def test_policy_deny_exits_4(team: Team) -> None:
    write(
        team.repo,
        ".cloned/no-deletes.yaml",
        "apiVersion: cloned/v1\nkind: PolicyPack\nmetadata: {name: keep-budgets}\n"
        "spec:\n  extends: baseline\n  rules:\n"
        "    - name: no-budget-deletes\n"
        "      match: {kinds: [Budget], actions: [delete]}\n"
        "      decision: deny\n",
    )
    team.edit(
        ".cloned/workspace.yaml", "policyPacks: [baseline]", "policyPacks: [baseline, keep-budgets]"
    )
    # Adding a policy pack is itself gated, and so is the Workspace change that selects it. The
    # Workspace change waits for the pack, but both requests open at once.
    gated = team.run("apply")
    assert gated.code == 3, gated.out
    assert "workspace.team (update) skipped: waits for policypack.keep-budgets" in gated.out
    for request in team.requests():
        signed = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
        assert signed.code == 0, signed.err
    assert team.run("apply").code == 0
    text = (team.repo / ".cloned" / "budgets.yaml").read_text()
    (team.repo / ".cloned" / "budgets.yaml").write_text(text.split("---")[0])
    plan = team.run("plan")
    assert plan.code == 4
    assert "decision: deny: keep-budgets/no-budget-deletes" in plan.out
    assert team.run("apply").code == 4


def test_a_denial_does_not_lapse_but_an_approval_does(team: Team) -> None:
    request = raise_budget(team)
    early = {"CLONED_NOW": "2026-01-01T00:00:00+00:00"}
    much_later = {"CLONED_NOW": "2027-01-01T00:00:00+00:00"}
    denied = team.run("approvals", "deny", request, "--key", "bob", who="bob", env=early)
    assert denied.code == 0, denied.err
    assert team.run("apply", env=much_later).code == 4
    assert (
        team.run("approvals", "approve", request, "--key", "alice", who="alice", env=early).code
        == 0
    )
    verify = team.run("approvals", "verify", env=much_later)
    assert verify.code == 0, verify.out
    assert (
        f".cloned/approvals/{request}/alice.json: "
        "expired at 2026-01-08T00:00:00Z; it no longer counts" in verify.out
    )
    assert "Approval records: 1 valid, 1 expired, 0 invalid" in verify.out


def test_reverting_a_change_retires_its_request_and_redoing_it_revives_it(team: Team) -> None:
    request = raise_budget(team, "80")
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    assert team.run("apply").code == 0
    (retired,) = team.requests("--all")
    assert retired["status"] == "superseded"
    assert retired["superseded_by"] is None
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    assert team.run("apply").code == 3
    (revived,) = team.requests()
    assert revived["id"] == request
    assert revived["status"] == "pending"


def test_who_approved_stays_visible_after_apply(team: Team) -> None:
    request = raise_budget(team)
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    assert team.run("apply").code == 0
    (done,) = team.requests("--all")
    assert done["status"] == "approved"
    assert [a["approver"] for a in done["approvals"]] == ["alice"]
    assert done["missing"] == []
