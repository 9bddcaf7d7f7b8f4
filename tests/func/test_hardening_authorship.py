"""Attacker review, authorship under `strict`: the author of a change is the signer of the commit
that made the content, not of a merge or a move that only carried it (docs/gitops.md, "Signed
commits"; specs/approval-record.md, "Authorship")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cloned, commit_all, git, write
from tests.func.engine_helpers import BUDGETS, Team, make_team

MONTHLY, DAILY = BUDGETS.split("---\n")


@pytest.fixture
def strict(repo: Path, tmp_path: Path) -> Team:
    """A strict workspace with three admins (alice, bob, dave), committed and applied: a gated
    change needs two of them, neither its author."""
    team = make_team(repo, tmp_path, packs="[strict]")
    home = tmp_path / "home-dave"
    made = cloned("keys", "generate", "dave", env={"CLONED_HOME": str(home)})
    assert made.code == 0, made.err
    team.homes["dave"], team.keys["dave"] = home, made.out.strip()
    workspace = (repo / ".cloned/workspace.yaml").read_text()
    workspace += (
        f'    - name: dave\n      publicKey: "{team.keys["dave"]}"\n      groups: [admins]\n'
    )
    write(repo, ".cloned/workspace.yaml", workspace)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "Team workspace")
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    return team


def signing(team: Team, who: str) -> list[str]:
    """git options that SSH-sign with `who`'s Cloned key."""
    return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={team.homes[who] / 'keys' / who}"]


def signed_commit(team: Team, who: str, message: str) -> str:
    git("add", "-A", cwd=team.repo)
    git(*signing(team, who), "commit", "-q", "-S", "-m", message, cwd=team.repo)
    return git("rev-parse", "HEAD", cwd=team.repo).strip()


def pending_request(team: Team) -> str:
    result = team.run("apply")
    assert result.code == 3, result.out + result.err
    (request,) = [str(r["id"]) for r in team.requests() if r["status"] == "pending"]
    return request


def assert_author_is_refused(team: Team, author: str, request: str) -> None:
    own = team.run("approvals", "approve", request, "--key", author, who=author)
    assert own.code == 1, own.out + own.err
    assert f"does not let the change's author ({author}) approve it" in own.err


def approve_and_apply(team: Team, request: str, *who: str) -> None:
    for name in who:
        signed = team.run("approvals", "approve", request, "--key", name, who=name)
        assert signed.code == 0, signed.out + signed.err
    commit_all(team.repo, "Approvals")
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    assert f"applied: approved by {', '.join(sorted(who))}" in applied.out, applied.out


def test_the_signer_of_the_raise_on_main_is_its_author(strict: Team) -> None:
    """The control: alice signs the raise directly on main."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    approve_and_apply(team, request, "bob", "dave")


def test_a_merge_passes_the_authorship_to_the_branch_commit(strict: Team) -> None:
    """bob's signed merge of alice's branch (the same file changed on both sides, so the merge
    differs from both parents) does not make bob the author of alice's raise."""
    team = strict
    git("switch", "-q", "-c", "feature", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    git("switch", "-q", "main", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 50}")
    signed_commit(team, "bob", "bob lowers the daily calls")
    git(*signing(team, "bob"), "merge", "-q", "-S", "--no-ff", "-m", "Merge feature", "feature",
        cwd=team.repo)  # fmt: skip
    assert "cost_usd: 80" in (team.repo / ".cloned/budgets.yaml").read_text()
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    approve_and_apply(team, request, "bob", "dave")


def test_a_move_passes_the_authorship_to_the_commit_that_made_the_content(strict: Team) -> None:
    """bob's signed commit that only moves alice's raised budget to its own file does not make
    bob its author."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    write(team.repo, ".cloned/budgets.yaml", DAILY)
    write(team.repo, ".cloned/monthly.yaml", MONTHLY.replace("cost_usd: 50", "cost_usd: 80"))
    signed_commit(team, "bob", "bob moves the monthly budget to its own file")
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    approve_and_apply(team, request, "bob", "dave")


def test_a_squashed_commit_is_authored_by_its_signer(strict: Team) -> None:
    """Documented behaviour: a commit that itself changes the content (here bob's squash of
    alice's branch) makes its signer the author, whoever wrote the branch."""
    team = strict
    git("switch", "-q", "-c", "feature", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    git("switch", "-q", "main", cwd=team.repo)
    git("merge", "-q", "--squash", "feature", cwd=team.repo)
    signed_commit(team, "bob", "Squashed feature")
    request = pending_request(team)
    assert_author_is_refused(team, "bob", request)
    approve_and_apply(team, request, "alice", "dave")


def test_the_same_content_made_on_both_sides_by_two_approvers_has_no_author(
    strict: Team,
) -> None:
    """alice and bob each make the raise on their own side: the change has two authors, so the
    rule cannot be met (it cannot tell whose approval to refuse)."""
    team = strict
    git("switch", "-q", "-c", "feature", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    alice = signed_commit(team, "alice", "alice raises")
    git("switch", "-q", "main", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 50}")
    bob = signed_commit(team, "bob", "bob raises too")
    git(*signing(team, "bob"), "merge", "-q", "-S", "--no-ff", "-m", "Merge feature", "feature",
        cwd=team.repo)  # fmt: skip
    request = pending_request(team)
    for who in ("dave", "alice"):
        signed = team.run("approvals", "approve", request, "--key", who, who=who)
        assert signed.code == 0, signed.out + signed.err
    applied = team.run("apply")
    assert applied.code == 3, applied.out
    assert "strict/budget-raise: author unknown: commits" in applied.out, applied.out
    assert alice[:12] in applied.out and bob[:12] in applied.out


def test_a_fix_of_a_broken_file_does_not_make_its_signer_the_author(strict: Team) -> None:
    """alice's raise leaves the file invalid and bob signs the fix: whether the raise was there
    before bob's commit cannot be told, so the author is unknown (never bob)."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    team.edit(".cloned/budgets.yaml", "period: day", "period: day\n  bogus: [")
    broken = signed_commit(team, "alice", "alice raises")
    team.edit(".cloned/budgets.yaml", "period: day\n  bogus: [", "period: day")
    signed_commit(team, "bob", "bob fixes the YAML")
    request = pending_request(team)
    for who in ("alice", "dave"):
        signed = team.run("approvals", "approve", request, "--key", who, who=who)
        assert signed.code == 0, signed.out + signed.err
    applied = team.run("apply")
    assert applied.code == 3, applied.out
    assert (
        f"strict/budget-raise: author unknown: whether commit {broken[:12]} already had the "
        "change cannot be told: .cloned/budgets.yaml there cannot be read or does not validate"
    ) in applied.out, applied.out


def test_a_change_older_than_the_walk_has_no_author(
    strict: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    for calls in ("90", "80", "70"):
        write(team.repo, ".cloned/notes.yaml", f"# daily calls next: {calls}\n")
        signed_commit(team, "bob", f"bob's note {calls}")
    monkeypatch.setattr("reconciler.engine.authorship.MAX_WALK", 3)
    plan = team.run("plan")
    assert (
        "strict/budget-raise: author unknown: no commit among the last 3 of .cloned has "
        "budget.monthly as applied"
    ) in plan.out, plan.out


# --- A second attacker review ---------------------------------------------------------------


def raised_by_bob_then_lowered(team: Team, *, lowered_by: str) -> str:
    """bob's signed raise to 80, approved and applied, then lowered back to 50 and applied:
    the commit of bob's raise (old content an attacker would like to bring back)."""
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    bobs = signed_commit(team, "bob", "bob raises")
    approve_and_apply(team, pending_request(team), "alice", "dave")
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    signed_commit(team, lowered_by, f"{lowered_by} lowers")
    assert team.run("apply").code == 0
    return bobs


def test_a_hand_made_merge_that_brings_back_old_content_is_its_own_author(strict: Team) -> None:
    """bob's raise is applied, alice lowers it, then a merge made with `git commit-tree` (its
    second parent an ancestor of the first, which `git merge` never makes) brings 80 back: the
    merge made that content, not bob's old commit, so without an approver's signature on the
    merge nobody is known as its author and alice cannot approve her own revival."""
    team = strict
    bobs = raised_by_bob_then_lowered(team, lowered_by="alice")
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    git("add", "-A", cwd=team.repo)
    tree = git("write-tree", cwd=team.repo).strip()
    merge = git("commit-tree", tree, "-p", "HEAD", "-p", bobs, "-m", "Merge", cwd=team.repo)
    git("reset", "-q", "--soft", merge.strip(), cwd=team.repo)
    request = pending_request(team)
    git("rm", "-rq", f".cloned/approvals/{request}", cwd=team.repo)  # the spent ones go
    later = {"CLONED_NOW": "2099-01-01T00:00:00+00:00"}  # new records, not the spent ones again
    own = team.run("approvals", "approve", request, "--key", "alice", who="alice", env=later)
    assert own.code == 0, own.err  # recorded, with a note: the author may become known
    listed = team.run("approvals", "show", request)
    assert "author unknown: the planned content is older than the applied one" in listed.out
    commit_all(team.repo, "alice's approval")
    dave = team.run("approvals", "approve", request, "--key", "dave", who="dave", env=later)
    assert dave.code == 0, dave.err
    commit_all(team.repo, "dave's approval")
    assert team.run("apply", env=later).code == 3  # the rule cannot be met: whose to refuse?


def test_every_signer_of_a_change_made_in_two_commits_is_its_author(strict: Team) -> None:
    """alice raises the calls a hundredfold and bob then nudges the cost down in a second
    commit: the change against the applied state is both of theirs, so neither may approve."""
    team = strict
    team.edit(".cloned/budgets.yaml", "calls: 1000", "calls: 100000")
    signed_commit(team, "alice", "alice raises calls")
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 49")
    signed_commit(team, "bob", "bob nudges the cost down")
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    assert_author_is_refused(team, "bob", request)
    for name in ("dave",):
        assert team.run("approvals", "approve", request, "--key", name, who=name).code == 0
    commit_all(team.repo, "dave's approval")
    assert team.run("apply").code == 3  # strict wants two admins besides the authors


# --- A third attacker review ----------------------------------------------------------------


def test_old_content_merged_in_from_a_side_branch_is_made_by_the_merge(strict: Team) -> None:
    """bob's raise to 80 was applied and then lowered; a side branch from bob's old commit
    (with an unrelated commit on it, so neither merge parent is an ancestor of the other) is
    merged back with 80: that content is older than the applied one, so the merge side's
    commits made it, not bob; unsigned, they leave the author unknown."""
    team = strict
    bobs = raised_by_bob_then_lowered(team, lowered_by="dave")
    git("switch", "-q", "-c", "stale", bobs, cwd=team.repo)
    write(team.repo, ".cloned/notes.yaml", "# a note\n")
    commit_all(team.repo, "a note")
    git("switch", "-q", "main", cwd=team.repo)
    git("merge", "-q", "--no-ff", "--no-commit", "stale", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")  # the merge's resolution
    commit_all(team.repo, "Merge stale")
    plan = team.run("plan")
    assert "author unknown: the planned content is older than the applied one" in plan.out


def test_a_change_made_and_undone_on_the_way_keeps_its_first_author(strict: Team) -> None:
    """alice raises to 80, bob bumps to 90 and reverts his bump: the planned 80 is alice's
    (and bob's), so neither may approve it."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 90")
    signed_commit(team, "bob", "bob bumps")
    git(*signing(team, "bob"), "revert", "-S", "--no-edit", "HEAD", cwd=team.repo)
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    assert_author_is_refused(team, "bob", request)


def test_dropping_and_recreating_a_resource_keeps_its_first_author(strict: Team) -> None:
    """alice raises; bob drops the document and then re-creates it, unchanged, in another
    file: alice is still an author of the planned raise."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    write(team.repo, ".cloned/budgets.yaml", DAILY)
    signed_commit(team, "bob", "bob drops the monthly budget")
    write(team.repo, ".cloned/monthly.yaml", MONTHLY.replace("cost_usd: 50", "cost_usd: 80"))
    signed_commit(team, "bob", "bob re-creates it")
    request = pending_request(team)
    assert_author_is_refused(team, "alice", request)
    assert_author_is_refused(team, "bob", request)


def test_a_replace_ref_does_not_rewrite_whose_change_it_is(strict: Team) -> None:
    """alice's unsigned raise has no known author; a local `git replace --graft` that makes
    bob's old signed branch its parent changes nothing: Cloned reads history without replace
    refs."""
    team = strict
    git("switch", "-q", "-c", "old", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "bob", "bob's old raise")
    git("switch", "-q", "main", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(team.repo, "alice raises, unsigned")
    git("replace", "--graft", "HEAD", "HEAD~1", "old", cwd=team.repo)
    plan = team.run("plan")
    assert "author unknown: commit " in plan.out and "is not signed by an approver" in plan.out


# --- A fourth attacker review ---------------------------------------------------------------


def test_content_older_than_the_applied_point_has_no_known_author(strict: Team) -> None:
    """alice raises to 80; bob signs a harmless commit on a branch from there; alice reverts to
    50 and merges bob's branch back with 80: the 80 is older than the applied point, so the
    signer of the commit that merely carried it (bob) is not its author, nor is anyone."""
    team = strict
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    signed_commit(team, "alice", "alice raises")
    git("switch", "-q", "-c", "bobwork", cwd=team.repo)
    write(team.repo, ".cloned/notes.yaml", "# bob's note\n")
    signed_commit(team, "bob", "bob's note")
    git("switch", "-q", "main", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 80", "cost_usd: 50")
    commit_all(team.repo, "revert, unsigned")
    git("merge", "-q", "--no-ff", "--no-commit", "bobwork", cwd=team.repo)
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 80")
    commit_all(team.repo, "Merge bobwork, unsigned")
    plan = team.run("plan")
    assert "author unknown: the planned content is older than the applied one" in plan.out, plan.out
