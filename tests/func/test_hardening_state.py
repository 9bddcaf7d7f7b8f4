"""Security review, issue 8: the state database, the audit history in git and the lock file
cannot be played against each other (deleted state, damaged databases, tampered rows, audit
commits that rewrite history, a missing audit key, leftover temporary files)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from reconciler.canonical import digest
from tests.conftest import commit_all, git, write
from tests.func.engine_helpers import Team, applied_team
from tests.func.test_formats import APPLY_RESULT, assert_valid

DB = ".cloned/state/cloned.db"
LOCK = ".cloned/cloned.lock"


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).strip()


def audit_lines(team: Team) -> list[str]:
    shown = team.run("audit", "log", "--json")
    assert shown.code == 0, shown.err
    return shown.out.splitlines()


def one_error(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("Error:")]
    return line


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    return applied_team(repo, tmp_path)


# --- 1. A workspace with applied history never bootstraps again ---------------------------------


def _forget_local_state(repo: Path) -> None:
    shutil.rmtree(repo / ".cloned/state")
    (repo / LOCK).unlink()
    shutil.rmtree(repo / ".cloned/audit")


@pytest.mark.parametrize("command", [["apply"], ["reconcile", "--once"]])
def test_deleting_local_state_does_not_bootstrap_a_gated_raise(
    team: Team, command: list[str]
) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 5000")
    commit_all(repo, "Raise the monthly budget")
    before = head(repo)
    _forget_local_state(repo)

    refused = team.run(*command)

    assert refused.code == 1, refused.out
    line = one_error(refused.err)
    assert "no state database" in line
    assert "git history" in line
    assert not (repo / ".cloned/state").exists()
    assert not (repo / LOCK).exists()
    assert not (repo / ".cloned/audit").exists()
    assert head(repo) == before
    git("checkout", "-q", "--", ".cloned", cwd=repo)
    assert team.run("audit", "verify").code == 0


def test_a_fresh_clone_cannot_apply_either(team: Team, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", str(team.repo), str(clone), cwd=tmp_path)
    shutil.rmtree(clone / ".cloned/audit")
    (clone / LOCK).unlink()
    refused = team.run("apply", "--path", str(clone))
    assert refused.code == 1
    assert "no state database" in one_error(refused.err)
    assert not (clone / ".cloned/state").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b"this is not a database, just text" * 200, "cannot be opened"),
        ("foreign", "not a Cloned state database"),
        ("incomplete", "not a Cloned state database"),
    ],
)
@pytest.mark.parametrize("command", [["apply"], ["plan"], ["drift"], ["audit", "log"]])
def test_a_damaged_database_is_an_error_naming_it(
    team: Team, content: bytes | str, says: str, command: list[str]
) -> None:
    repo = team.repo
    path = repo / DB
    for extra in (path, path.with_name("cloned.db-wal"), path.with_name("cloned.db-shm")):
        extra.unlink(missing_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        connection = sqlite3.connect(path)
        if content == "foreign":
            connection.execute("CREATE TABLE notes (text TEXT)")
        else:
            connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            connection.execute("PRAGMA user_version=1")
        connection.commit()
        connection.close()
    data = path.read_bytes()
    lock = (repo / LOCK).read_bytes()

    result = team.run(*command)

    assert result.code == 1, result.out
    line = one_error(result.err)
    assert "cloned.db" in line and says in line
    assert path.read_bytes() == data
    assert not path.with_name("cloned.db-wal").exists()
    assert (repo / LOCK).read_bytes() == lock


def test_an_audit_commit_never_deletes_or_rewrites_committed_audit_files(team: Team) -> None:
    """The check sits in the commit itself: whatever asked for it, a commit that would delete a
    committed segment or shorten the checkpoints is refused."""
    from reconciler import gitrepo
    from reconciler.engine import auditcommit
    from reconciler.errors import ClonedError

    repo = team.repo
    before = head(repo)
    (segment,) = (repo / ".cloned/audit/segments").iterdir()
    segment.unlink()
    with pytest.raises(ClonedError, match="delete") as deleted:
        gitrepo.commit_paths(repo, auditcommit.PATHS, "m", None, guard=auditcommit.GUARD)
    assert segment.name in deleted.value.message
    git("checkout", "-q", "--", ".cloned/audit", cwd=repo)
    checkpoints = repo / ".cloned/audit/checkpoints.jsonl"
    checkpoints.write_text("")
    with pytest.raises(ClonedError, match=r"checkpoints\.jsonl"):
        gitrepo.commit_paths(repo, auditcommit.PATHS, "m", None, guard=auditcommit.GUARD)
    assert head(repo) == before


def test_the_audit_commit_leaves_dot_files_under_the_audit_folder_out(team: Team) -> None:
    from reconciler import gitrepo
    from reconciler.engine import auditcommit

    repo = team.repo
    write(repo, ".cloned/audit/.checkpoints.jsonl.abc.tmp", "half written\n")
    write(repo, ".cloned/audit/segments/.00000006-00000006.jsonl.abc.tmp", "half\n")
    write(repo, LOCK, (repo / LOCK).read_text() + " ")
    made = gitrepo.commit_paths(
        repo,
        auditcommit.PATHS,
        "m",
        None,
        guard=auditcommit.GUARD,
        exclude=auditcommit.EXCLUDE,
    )
    assert made is not None
    assert git("show", "--name-only", "--format=", made, cwd=repo).split() == [LOCK]


def test_apply_refuses_when_committed_audit_files_are_missing(team: Team) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 90}")
    commit_all(repo, "Lower the daily calls")
    before, events = head(repo), audit_lines(team)
    shutil.rmtree(repo / ".cloned/audit")

    refused = team.run("apply")

    assert refused.code == 1, refused.out
    assert ".cloned/audit/segments/00000001-00000005.jsonl" in one_error(refused.err)
    assert head(repo) == before
    git("checkout", "-q", "--", ".cloned/audit", cwd=repo)
    assert audit_lines(team) == events


# --- 5. Tampered state never becomes truthful ----------------------------------------------------


def _tamper_daily(repo: Path, calls: int) -> None:
    """Edit budget.daily in the state database and recompute its digest, as an attacker would."""
    with sqlite3.connect(repo / DB) as connection:
        (text,) = connection.execute(
            "SELECT state FROM resources WHERE address = 'budget.daily'"
        ).fetchone()
        state = json.loads(text)
        state["spec"]["limits"]["calls"] = calls
        connection.execute(
            "UPDATE resources SET state = ?, digest = ? WHERE address = 'budget.daily'",
            (json.dumps(state, sort_keys=True), digest(state)),
        )
    connection.close()


def _locked_calls(text: str) -> int:
    calls: int = json.loads(text)["resources"]["budget.daily"]["state"]["spec"]["limits"]["calls"]
    return calls


def test_a_tampered_row_never_reaches_the_lock(team: Team) -> None:
    repo = team.repo
    _tamper_daily(repo, 1_000_000)
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 1000000}")
    commit_all(repo, "Match the tampered value")

    refused = team.run("reconcile", "--once")

    assert refused.code == 1, refused.out
    assert "budget.daily" in refused.out + refused.err
    assert _locked_calls((repo / LOCK).read_text()) == 100
    assert _locked_calls(git("show", f"HEAD:{LOCK}", cwd=repo)) == 100
    applied = team.run("apply")
    assert applied.code == 1
    assert "budget.daily" in one_error(applied.err)
    assert _locked_calls((repo / LOCK).read_text()) == 100


def test_self_heal_restores_the_audited_state_and_policy_judges_the_raise(team: Team) -> None:
    repo = team.repo
    _tamper_daily(repo, 1_000_000)
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 1000000}")
    commit_all(repo, "Match the tampered value")

    healed = team.run("reconcile", "--once", "--self-heal", "--log-format", "json")

    assert healed.code == 3, healed.out + healed.err
    assert '"action": "restored"' in healed.out
    assert team.run("drift").code == 0
    assert _locked_calls(git("show", f"HEAD:{LOCK}", cwd=repo)) == 100
    (request,) = team.requests()
    assert request["address"] == "budget.daily"


def test_self_heal_finds_the_audited_state_in_older_commits(team: Team) -> None:
    """The old bug committed a lock made from the tampered row: the audited state is then only
    in an earlier commit's lock, and repair must find it there, not bless the tampered one."""
    repo = team.repo
    good = (repo / LOCK).read_text()
    _tamper_daily(repo, 1_000_000)
    poisoned = json.loads(good)
    with sqlite3.connect(repo / DB) as connection:
        (text, row_digest) = connection.execute(
            "SELECT state, digest FROM resources WHERE address = 'budget.daily'"
        ).fetchone()
    connection.close()
    poisoned["resources"]["budget.daily"].update(state=json.loads(text), digest=row_digest)
    (repo / LOCK).write_text(json.dumps(poisoned, indent=2, sort_keys=True) + "\n")
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 1000000}")
    commit_all(repo, "A lock written from the tampered row")

    first = team.run("reconcile", "--once", "--self-heal", "--log-format", "json")
    assert first.code == 3, first.out + first.err
    assert '"action": "restored"' in first.out
    assert team.run("drift").code == 0
    assert (repo / LOCK).read_text() == good
    assert git("show", f"HEAD:{LOCK}", cwd=repo) == good
    events = audit_lines(team)
    second = team.run("reconcile", "--once", "--self-heal", "--log-format", "json")
    assert second.code == 3, second.out
    assert "healed" not in second.out
    assert audit_lines(team) == events


def test_drift_that_cannot_be_repaired_is_reported_and_not_repaired_again(team: Team) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 90}")
    commit_all(repo, "Lower the daily calls")
    # Applied but never committed anywhere: no lock holds the audited state of budget.daily.
    assert team.run("apply", "--no-commit").code == 0
    (repo / LOCK).unlink()
    _tamper_daily(repo, 1_000_000)
    events = audit_lines(team)

    for _ in range(2):
        failed = team.run("reconcile", "--once", "--self-heal", "--log-format", "json")
        assert failed.code == 1, failed.out
        assert "budget.daily" in failed.out
        assert "redigested" not in failed.out
        assert audit_lines(team) == events
        assert not (repo / LOCK).exists()
    assert team.run("drift").code == 2


def test_the_loop_reports_unrepairable_drift_once_and_does_not_retry_it(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.engine import reconcile
    from tests.fakes.clock import FakeClock

    repo = team.repo
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 90}")
    commit_all(repo, "Lower the daily calls")
    assert team.run("apply", "--no-commit").code == 0
    (repo / LOCK).unlink()
    _tamper_daily(repo, 1_000_000)
    monkeypatch.setenv("CLONED_HOME", str(team.homes["operator"]))

    class Never:
        reason = None

        def is_set(self) -> bool:
            return False

        def wait(self, seconds: float) -> bool:
            return False

    logged: list[reconcile.LogEvent] = []
    clock = FakeClock()
    settings = reconcile.Settings(repo, "interval", interval=1.0, self_heal=True, clock=clock)
    loop = reconcile.Loop(settings, logged.append, Never())
    assert loop.tick("start") == 1
    (error,) = [e for e in logged if e.event == "error"]
    assert "budget.daily" in error.details["error"]
    clock.advance(3600)  # long past any backoff
    for _ in range(3):
        assert loop.tick("interval", probe_drift=True) is None
    assert [e.event for e in logged].count("error") == 1
    assert loop.cycles == 1
    # New inputs (a commit) run a cycle at once.
    team.edit(".cloned/budgets.yaml", "{calls: 90}", "{calls: 80}")
    commit_all(repo, "Lower again")
    assert loop.tick("interval") == 1
    assert loop.cycles == 2


# --- 14. Apply checks what it needs before the first change --------------------------------------


def _lower_daily(team: Team) -> None:
    team.edit(".cloned/budgets.yaml", "{calls: 100}", "{calls: 90}")
    commit_all(team.repo, "Lower the daily calls")


def _daily_calls_applied(repo: Path) -> int:
    with sqlite3.connect(repo / DB) as connection:
        (text,) = connection.execute(
            "SELECT state FROM resources WHERE address = 'budget.daily'"
        ).fetchone()
    connection.close()
    calls: int = json.loads(text)["spec"]["limits"]["calls"]
    return calls


@pytest.mark.parametrize("damage", ["missing", "replaced"])
def test_a_missing_or_replaced_audit_key_is_refused_before_any_change(
    team: Team, damage: str
) -> None:
    from reconciler.audit.signing import create_key_file

    repo = team.repo
    _lower_daily(team)
    key = repo / ".cloned/state/audit-key"
    key.unlink()
    if damage == "replaced":
        create_key_file(key)
    events, before = audit_lines(team), head(repo)

    refused = team.run("apply")

    assert refused.code == 1, refused.out
    assert ".cloned/state/audit-key" in one_error(refused.err)
    assert _daily_calls_applied(repo) == 100
    assert audit_lines(team) == events
    assert head(repo) == before


def test_an_unwritable_lock_file_is_refused_before_any_change(team: Team) -> None:
    repo = team.repo
    _lower_daily(team)
    (repo / LOCK).unlink()
    (repo / LOCK).mkdir()
    events = audit_lines(team)

    refused = team.run("apply")

    assert refused.code == 1, refused.out
    assert "cloned.lock" in one_error(refused.err)
    assert _daily_calls_applied(repo) == 100
    assert audit_lines(team) == events


def test_a_failure_after_changes_says_what_was_applied(
    team: Team, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The preflight cannot foresee everything (a disk that fills up): when a step after the
    changes fails, apply still reports the changes it made, in text and JSON."""
    import importlib

    from reconciler.cli.main import run
    from reconciler.errors import ClonedError

    repo = team.repo
    _lower_daily(team)

    def fail(*args: object, **kwargs: object) -> None:
        raise ClonedError("no space left on device")

    monkeypatch.setattr(importlib.import_module("reconciler.audit.export"), "export", fail)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("CLONED_HOME", str(team.homes["operator"]))
    assert run(["apply", "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert_valid(APPLY_RESULT, shown)
    assert shown["exit_code"] == 1
    assert [(o["address"], o["status"]) for o in shown["outcomes"]] == [("budget.daily", "applied")]
    assert shown["error"]["message"] == "no space left on device"
    assert shown["error"]["stage"] == "export"

    team.edit(".cloned/budgets.yaml", "{calls: 90}", "{calls: 80}")
    commit_all(repo, "Lower again")
    assert run(["apply"]) == 1
    captured = capsys.readouterr()
    assert "budget.daily (update) applied" in captured.out
    assert "no space left on device" in one_error(captured.err)
    assert "1 applied" in captured.err


# --- 15. Temporary files are never committed ----------------------------------------------------


def test_leftover_temporary_files_are_not_committed_and_are_cleaned_up(team: Team) -> None:
    repo = team.repo
    leftovers = [
        repo / ".cloned/.cloned.lock.k9x2abcd.tmp",
        repo / ".cloned/audit/.checkpoints.jsonl.k9x2abcd.tmp",
        repo / ".cloned/audit/segments/.00000006-00000009.jsonl.k9x2abcd.tmp",
    ]
    _lower_daily(team)
    for path in leftovers:
        path.write_text("half written\n")

    applied = team.run("apply")

    assert applied.code == 0, applied.err
    committed = git("show", "--name-only", "--format=", "HEAD", cwd=repo).split()
    assert not [name for name in committed if name.endswith(".tmp")]
    assert [path for path in leftovers if path.exists()] == []


def test_a_writer_killed_half_way_leaves_nothing_git_sees(team: Team) -> None:
    """A real process, killed with SIGKILL while its temporary is written and not yet renamed."""
    import subprocess
    import sys

    repo = team.repo
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from reconciler.atomic import write_atomic\n"
        "def stuck(src, dst):\n"
        "    print(src, flush=True)\n"
        "    time.sleep(120)\n"
        "os.replace = stuck\n"
        "write_atomic(Path(sys.argv[1]), 'half written')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(repo / LOCK)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    temp = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert temp.exists()
    assert temp.parent == repo / ".cloned/state/tmp"
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""

    _lower_daily(team)
    applied = team.run("apply")

    assert applied.code == 0, applied.err
    assert not temp.exists()


def test_temporary_files_live_in_the_ignored_state_folder(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from reconciler.atomic import write_atomic

    seen: list[Path] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(Path(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(team.repo / LOCK, (team.repo / LOCK).read_text())
    write_atomic(team.repo / ".cloned/audit/checkpoints.jsonl", b"x\n")
    monkeypatch.undo()
    assert len(seen) == 2
    for temp in seen:
        assert temp.parent == team.repo / ".cloned/state/tmp", temp
    git("check-ignore", "-q", "--no-index", str(seen[0]), cwd=team.repo)


# --- Re-running apply while approvals are pending ------------------------------------------------


def test_rerunning_apply_with_pending_approvals_records_nothing(team: Team) -> None:
    repo = team.repo
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 500")
    commit_all(repo, "Raise the monthly budget")
    first = team.run("apply")
    assert first.code == 3, first.out
    events, before = audit_lines(team), head(repo)

    again = team.run("apply")

    assert again.code == 3, again.out
    assert "awaiting approval" in again.out
    assert audit_lines(team) == events
    assert head(repo) == before
    assert team.run("reconcile", "--once").code == 3
    assert audit_lines(team) == events
    assert head(repo) == before


def test_rerunning_apply_with_a_forbidden_change_records_nothing(team: Team) -> None:
    repo = team.repo
    write(
        repo,
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
    commit_all(repo, "Keep budgets")
    assert team.run("apply").code == 3
    for request in team.requests():
        signed = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
        assert signed.code == 0, signed.err
    assert team.run("apply").code == 0
    text = (repo / ".cloned/budgets.yaml").read_text()
    (repo / ".cloned/budgets.yaml").write_text(text.split("---")[0])
    commit_all(repo, "Drop the daily budget")
    assert team.run("apply").code == 4
    events, before = audit_lines(team), head(repo)

    again = team.run("apply")

    assert again.code == 4, again.out
    assert "budget.daily (delete) forbidden by policy" in again.out
    assert audit_lines(team) == events
    assert head(repo) == before


def test_a_state_database_without_history_does_not_bootstrap_either(team: Team) -> None:
    """A database that holds no event (made by hand, or left by an old half-bootstrap) is no
    more a history to continue than no database at all."""
    from reconciler.state.db import StateDB

    repo = team.repo
    team.edit(".cloned/budgets.yaml", "cost_usd: 50", "cost_usd: 5000")
    commit_all(repo, "Raise the monthly budget")
    _forget_local_state(repo)
    made = StateDB.open(repo)
    assert made is not None
    made.close()
    data = (repo / DB).read_bytes()

    refused = team.run("apply")

    assert refused.code == 1, refused.out
    assert "state database without history" in one_error(refused.err)
    assert (repo / DB).read_bytes() == data
    assert not (repo / LOCK).exists()
    assert not (repo / ".cloned/audit").exists()
