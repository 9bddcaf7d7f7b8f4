"""Security review (issue 8), approvals: one key is one approver, malformed records never crash,
approvals are spent by the apply that uses them, and refusals before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler import keys
from reconciler.approvals.records import Record
from tests.conftest import cloned, commit_all, git, write
from tests.func.engine_helpers import Team, make_team

EARLY = {"CLONED_NOW": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    team = make_team(repo, tmp_path)
    assert team.run("apply").code == 0
    return team


def raise_budget(team: Team, to: str = "80", frm: str = "50") -> str:
    team.edit(".cloned/budgets.yaml", f"cost_usd: {frm}", f"cost_usd: {to}")
    result = team.run("apply")
    assert result.code == 3, result.out + result.err
    pending = [r for r in team.requests() if r["status"] == "pending"]
    assert len(pending) == 1
    return str(pending[0]["id"])


def signed_record(team: Team, who: str, request: str, **fields: Any) -> dict[str, Any]:
    """A record signed with `who`'s key over whatever fields the test sets."""
    if "change_hash" not in fields:
        listed = {str(r["id"]): r for r in team.requests("--all")}
        fields["change_hash"] = str(listed[request]["change_hash"])
    base = {
        "format_version": 1,
        "verdict": "approve",
        "workspace": "team",
        "request_id": request,
        "address": "budget.monthly",
        "approver": who,
        "public_key": keys.material(team.keys[who]),
        "signed_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-08T00:00:00Z",
        "comment": "",
    }
    base.update(fields)
    record = Record(**base)
    signer = keys.load_signer(str(team.homes[who] / "keys" / who))
    return {**record.to_json(), "signature": signer.sign(record.signed_payload())}


def put(team: Team, rel: str, data: dict[str, Any] | str) -> None:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    write(team.repo, rel, text)


# --- 2. One key, two approvers ---------------------------------------------------------------


def test_one_key_under_two_names_is_refused_at_validate(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path)
    text = (team.repo / ".cloned/workspace.yaml").read_text()
    material = keys.material(team.keys["alice"])
    text += f'    - name: alice2\n      publicKey: "{material} second-laptop"\n'
    text += "      groups: [admins]\n"
    write(team.repo, ".cloned/workspace.yaml", text)
    result = team.run("validate")
    assert result.code == 1, result.out
    lines = [line for line in result.out.splitlines() + result.err.splitlines() if "alice2" in line]
    assert lines, result.out + result.err
    assert lines[0].startswith(".cloned/workspace.yaml:"), lines
    location = lines[0].split(":")
    assert location[1].isdigit() and location[2].isdigit(), lines
    assert 'approver "alice2" has the key of approver "alice"' in lines[0]


TWO_ADMINS = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata:
  name: two
spec:
  extends: baseline
  rules:
    - name: two-admins
      match: {kinds: [Budget], actions: [update], fields: ["spec.limits.*"], grows: true}
      decision: approval
      approvals: {count: 2, groups: [admins], distinct: true}
"""


def test_one_key_never_counts_twice_in_an_applied_state(repo: Path, tmp_path: Path) -> None:
    """An applied state from before the check lists alice's key under two names: her two
    records (one per name) are still one person towards a two-person rule."""
    team = make_team(repo, tmp_path, packs="[baseline, two]")
    write(team.repo, ".cloned/policy.yaml", TWO_ADMINS)
    assert team.run("apply").code == 0
    clone = tmp_path / "clone"
    shutil.copytree(team.repo, clone, ignore=shutil.ignore_patterns("state"))
    lock_path = clone / ".cloned" / "cloned.lock"
    lock = json.loads(lock_path.read_text())
    workspace = lock["resources"]["workspace.team"]["state"]["spec"]
    material = keys.material(team.keys["alice"])
    workspace["approvers"].append(
        {"name": "alice2", "publicKey": f"{material} laptop", "groups": ["admins"]}
    )
    lock_path.write_text(json.dumps(lock, indent=2))
    team = Team(clone, team.homes, team.keys)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    planned = json.loads(team.run("plan", "--json").out)
    (gated,) = [c for c in planned["changes"] if c["address"] == "budget.monthly"]
    request = gated["approvals"]["request"]
    for name in ("alice", "alice2"):
        record = signed_record(
            team, "alice", request, approver=name, change_hash=gated["change_hash"]
        )
        put(team, f".cloned/approvals/{request}/{name}.json", record)
    planned = json.loads(team.run("plan", "--json", env=EARLY).out)
    (gated,) = [c for c in planned["changes"] if c["address"] == "budget.monthly"]
    assert gated["approvals"]["status"] == "pending", gated
    assert gated["approvals"]["missing"] == ["two/two-admins: 1 more from admins"]


# --- 11. Malformed records are invalid, never a crash ----------------------------------------


MALFORMED = {
    "naive-expiry": None,  # filled in by the test: a validly signed record, naive expires_at
    "bad-json": "{not json",
    "duplicate-keys": '{"verdict": "deny", "verdict": "approve"}',
    "not-an-object": "[1, 2]",
    "nan": '{"format_version": NaN}',
    "deep": "[" * 5000 + "]" * 5000,
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_record_is_invalid_everywhere_and_never_jams(team: Team, kind: str) -> None:
    request = raise_budget(team)
    if kind == "naive-expiry":
        put(
            team,
            f".cloned/approvals/{request}/alice.json",
            signed_record(team, "alice", request, expires_at="2026-01-08T00:00:00"),
        )
    else:
        put(team, f".cloned/approvals/{request}/x.json", str(MALFORMED[kind]))
    for args in (
        ("plan",),
        ("apply",),
        ("approvals", "list"),
        ("approvals", "show", request),
        ("reconcile", "--once", "--no-commit", "--allow-dirty"),
    ):
        result = team.run(*args, env=EARLY)
        assert "Traceback" not in result.err, (args, result.err)
        assert "internal error" not in result.err.lower(), (args, result.err)
        assert result.code in (0, 3), (args, result.code, result.out, result.err)
    verify = team.run("approvals", "verify", env=EARLY)
    assert verify.code == 1, verify.out + verify.err
    assert "not a valid approval record" in verify.out, verify.out
    # The good record next to it still counts.
    assert team.run("approvals", "approve", request, "--key", "bob", who="bob", env=EARLY).code == 0
    applied = team.run("apply", env=EARLY)
    assert applied.code == 0, applied.out + applied.err


def test_duplicate_keys_and_wrong_types_are_named(team: Team) -> None:
    request = raise_budget(team)
    good = signed_record(team, "alice", request)
    text = json.dumps(good)[:-1] + ', "verdict": "approve"}'
    put(team, f".cloned/approvals/{request}/alice.json", text)
    put(
        team,
        f".cloned/approvals/{request}/bob.json",
        {**signed_record(team, "bob", request), "format_version": True},
    )
    verify = team.run("approvals", "verify", env=EARLY)
    assert verify.code == 1
    assert "duplicate key 'verdict'" in verify.out, verify.out
    assert f"{request}/bob.json: not a valid approval record (format_version must be 1)" in (
        verify.out
    )


# --- 15. Refusals before anything is written -------------------------------------------------


def test_an_oversize_comment_is_refused_before_writing(team: Team) -> None:
    request = raise_budget(team)
    refused = team.run(
        "approvals", "approve", request, "--key", "alice", "--comment", "x" * 70_000, who="alice"
    )
    assert refused.code == 1, refused.out
    assert "Approved" not in refused.out
    assert refused.err.startswith("Error: --comment:"), refused.err
    assert not (team.repo / ".cloned" / "approvals").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "1e10", "0", "-1"])
def test_ttl_days_must_be_a_sane_number(team: Team, value: str) -> None:
    request = raise_budget(team)
    refused = team.run(
        "approvals", "approve", request, "--key", "alice", "--ttl-days", value, who="alice"
    )
    assert refused.code == 1, refused.out + refused.err
    assert refused.err.startswith("Error: --ttl-days:"), refused.err
    assert "Traceback" not in refused.err
    assert not (team.repo / ".cloned" / "approvals").exists()


@pytest.mark.parametrize("name", ["alice\n", "alice\nbob", "Alice", "a.b/../c", "x-"])
def test_key_names_are_approver_names(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    refused = cloned("keys", "generate", name, env={"CLONED_HOME": str(home)})
    assert refused.code == 1, refused.out
    assert refused.err.startswith("Error: invalid key name"), refused.err
    assert len(refused.err.strip().splitlines()[0]) > 20
    assert "\nbob" not in refused.err
    assert not (home / "keys").exists() or not any((home / "keys").iterdir())


# --- 4. An approval is spent by the apply that uses it ---------------------------------------


def test_an_approval_is_spent_by_the_apply_that_uses_it(team: Team) -> None:
    request = raise_budget(team, "80")
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    again = team.run("apply")
    assert again.code == 3, again.out + again.err
    assert "baseline/budget-raise: 1 more from admins" in again.out
    (revived,) = team.requests()
    assert revived["id"] == request
    assert revived["status"] == "pending"
    (used,) = revived["approvals"]  # type: ignore[misc]
    assert used["reason"].startswith("spent: an apply already used it (audit event ")
    shown = team.run("approvals", "show", request)
    assert "approve by alice at" in shown.out and "does not count: spent: " in shown.out
    verify = team.run("approvals", "verify")
    assert verify.code == 0, verify.out
    assert f".cloned/approvals/{request}/alice.json: spent: an apply already used it" in verify.out
    spent = team.run("audit", "log", "--type", "approval.spent", "--json")
    assert spent.code == 0, spent.err
    assert request in spent.out and "alice" in spent.out
    readable = team.run("audit", "log", "--type", "approval.spent").out.splitlines()
    assert readable[-1].endswith(
        f"request {request}: alice's approval used (.cloned/approvals/{request}/alice.json)"
    ), readable
    # The same change a second time needs a new approval, and gets it with one.
    early = {"CLONED_NOW": "2099-01-01T00:00:00+00:00"}
    assert team.run("approvals", "approve", request, "--key", "bob", who="bob", env=early).code == 0
    assert team.run("apply", env=early).code == 0


def test_the_pr_flow_does_not_count_an_approval_spent_on_the_base(
    repo: Path, tmp_path: Path
) -> None:
    team = make_team(repo, tmp_path)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "Team workspace")
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(repo, "Raise")
    assert team.run("apply").code == 3
    (request,) = [str(r["id"]) for r in team.requests()]
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    commit_all(repo, "Approve")
    assert team.run("apply").code == 0
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    commit_all(repo, "Lower")
    assert team.run("apply").code == 0
    git("checkout", "-q", "-b", "again", cwd=repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(repo, "Raise again")
    planned = team.run("plan", "--base", "main", "--json")
    (gated,) = [c for c in json.loads(planned.out)["changes"] if c["address"] == "budget.monthly"]
    assert gated["approvals"]["request"] == request
    assert gated["approvals"]["status"] == "pending", gated
    verify = team.run("approvals", "verify", "--base", "main")
    assert verify.code == 3, verify.out + verify.err
    assert f"budget.monthly [request {request}]: pending" in verify.out


# --- What a user expects ---------------------------------------------------------------------


def test_list_shows_an_approved_request_that_is_not_applied_yet(team: Team) -> None:
    request = raise_budget(team)
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    listed = team.run("approvals", "list")
    assert f"{request}  approved" in listed.out, listed.out
    assert team.run("apply").code == 0
    assert request not in team.run("approvals", "list").out


def test_show_prints_comments_inert(team: Team) -> None:
    request = raise_budget(team)
    comment = "ok\nInjected: approved by everyone \x1b[31m"
    signed = team.run(
        "approvals", "approve", request, "--key", "alice", "--comment", comment, who="alice"
    )
    assert signed.code == 0, signed.err
    shown = team.run("approvals", "show", request)
    assert "    comment: ok\\nInjected: approved by everyone \\x1b[31m" in shown.out, shown.out
    assert "\x1b" not in shown.out
    assert "\nInjected" not in shown.out


def test_apply_names_the_records_it_ignored(team: Team) -> None:
    request = raise_budget(team)
    assert team.run("approvals", "approve", request, "--key", "alice", who="alice").code == 0
    path = team.repo / ".cloned" / "approvals" / request / "alice.json"
    record = json.loads(path.read_text())
    record["comment"] = "edited"
    path.write_text(json.dumps(record))
    put(team, ".cloned/approvals/junk.json", "{")
    result = team.run("apply")
    assert result.code == 3
    assert (
        f"Ignored approval record .cloned/approvals/{request}/alice.json: the signature does "
        "not verify (forged or edited record)"
    ) in result.err, result.err
    assert "Ignored approval record .cloned/approvals/junk.json: not a valid approval record" in (
        result.err
    )
    payload = json.loads(team.run("apply", "--json").out)
    assert {i["file"] for i in payload["ignored_approvals"]} == {
        f".cloned/approvals/{request}/alice.json",
        ".cloned/approvals/junk.json",
    }


def test_reviewing_works_while_an_unrelated_file_is_invalid(team: Team) -> None:
    request = raise_budget(team)
    write(team.repo, ".cloned/broken.yaml", "apiVersion: cloned/v1\nkind: Budget\n  bad: [\n")
    assert team.run("validate").code == 1
    listed = team.run("approvals", "list")
    assert listed.code == 0, listed.err
    assert request in listed.out
    assert team.run("approvals", "show", request).code == 0
    signed = team.run("approvals", "approve", request, "--key", "alice", who="alice")
    assert signed.code == 0, signed.err
    verify = team.run("approvals", "verify")
    assert verify.code == 0, verify.out + verify.err


# --- 3. excludeAuthor: the author is the approver who signed the commit ----------------------


def signed_commit(team: Team, who: str, message: str) -> str:
    """Commit everything, SSH-signed with `who`'s Cloned key (as git's gpg.format=ssh does)."""
    git("add", "-A", cwd=team.repo)
    key = team.homes[who] / "keys" / who
    git(
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}",
        "commit",
        "-q",
        "-S",
        "-m",
        message,
        cwd=team.repo,
    )
    return git("rev-parse", "HEAD", cwd=team.repo).strip()


@pytest.fixture
def strict(repo: Path, tmp_path: Path) -> Team:
    """A strict workspace, committed and applied: every gated change needs two admins (alice
    and bob), neither the change's author."""
    team = make_team(repo, tmp_path, packs="[strict]")
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "Team workspace")
    assert team.run("apply").code == 0
    return team


def strict_request(team: Team) -> str:
    result = team.run("apply")
    assert result.code == 3, result.out + result.err
    (request,) = [str(r["id"]) for r in team.requests()]
    return request


def test_the_author_is_the_approver_who_signed_the_commit(strict: Team) -> None:
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "Raise the budget")
    request = strict_request(team)
    # Whoever runs it, and whatever keys their CLONED_HOME holds, alice is the author.
    own = team.run("approvals", "approve", request, "--key", "alice", who="alice")
    assert own.code == 1, own.out
    assert "strict/budget-raise does not let the change's author (alice) approve it" in own.err
    assert team.run("approvals", "approve", request, "--key", "bob", who="bob").code == 0
    still = team.run("apply")
    assert still.code == 3
    assert "strict/budget-raise: 1 more from admins" in still.out
    # A record alice wrote anyway does not count either.
    put(team, f".cloned/approvals/{request}/alice.json", signed_record(team, "alice", request))
    result = team.run("apply", env=EARLY)
    assert result.code == 3, result.out
    assert "does not let the change's author (alice) approve it" in result.err


def test_a_change_signed_by_a_non_admin_approver_takes_two_admins(strict: Team) -> None:
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "carol", "Raise the budget")
    request = strict_request(team)
    for who in ("alice", "bob"):
        assert team.run("approvals", "approve", request, "--key", who, who=who).code == 0
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err


@pytest.mark.parametrize("how", ["unsigned", "uncommitted", "unknown-key"])
def test_an_unknown_author_cannot_satisfy_exclude_author(
    strict: Team, tmp_path: Path, how: str
) -> None:
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    if how == "unsigned":
        commit = commit_all(team.repo, "Raise the budget")
        why = f"author unknown: commit {commit[:12]} is not signed by an approver"
    elif how == "unknown-key":
        home = tmp_path / "home-mallory"
        assert cloned("keys", "generate", "mallory", env={"CLONED_HOME": str(home)}).code == 0
        team.homes["mallory"] = home
        commit = signed_commit(team, "mallory", "Raise the budget")
        why = f"author unknown: commit {commit[:12]} is not signed by an approver"
    else:
        why = "author unknown: the change is not committed (.cloned/budgets.yaml differs from HEAD)"
    plan = team.run("plan")
    assert why in plan.out, plan.out
    request = strict_request(team)
    for who in ("alice", "bob"):
        signed = team.run("approvals", "approve", request, "--key", who, who=who)
        assert signed.code == 0, signed.err
        assert why in signed.out
    applied = team.run("apply")
    assert applied.code == 3, applied.out
    assert f"strict/budget-raise: {why}" in applied.out
    listed = team.run("approvals", "list")
    assert why in listed.out


def test_verify_base_knows_the_author_of_a_branch(strict: Team) -> None:
    team = strict
    git("checkout", "-q", "-b", "raise", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "Raise the budget")
    planned = json.loads(team.run("plan", "--base", "main", "--json").out)
    (gated,) = [c for c in planned["changes"] if c["address"] == "budget.monthly"]
    request = gated["approvals"]["request"]
    refused = team.run(
        "approvals", "approve", request, "--key", "alice", "--base", "main", who="alice"
    )
    assert refused.code == 1
    assert "does not let the change's author (alice) approve it" in refused.err
    signed = team.run("approvals", "approve", request, "--key", "bob", "--base", "main", who="bob")
    assert signed.code == 0, signed.err
    put(
        team,
        f".cloned/approvals/{request}/alice.json",
        signed_record(team, "alice", request, change_hash=gated["change_hash"]),
    )
    commit_all(team.repo, "Approvals")
    verify = team.run("approvals", "verify", "--base", "main", env=EARLY)
    assert verify.code == 1, verify.out
    assert (
        f".cloned/approvals/{request}/alice.json: strict/budget-raise does not let the change's "
        "author (alice) approve it"
    ) in verify.out
    assert "pending (approved by bob); needs strict/budget-raise: 1 more from admins" in verify.out
    # The same branch, its change unsigned: nobody can meet the rule.
    git("checkout", "-q", "main", cwd=team.repo)
    git("checkout", "-q", "-b", "unsigned", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit = commit_all(team.repo, "Raise the budget, unsigned")
    verify = team.run("approvals", "verify", "--base", "main")
    assert verify.code == 3, verify.out
    assert (
        f"needs strict/budget-raise: author unknown: commit {commit[:12]} is not signed by an "
        "approver"
    ) in verify.out
