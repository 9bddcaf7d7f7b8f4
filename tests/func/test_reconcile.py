"""`cloned reconcile` through the real CLI: --once, the --watch and --interval loops (real
processes, real git, a bare "remote"), dirty trees, approvals, errors and backoff, drift and
self-heal, log formats, the status file and bad flags.

Loops are waited on by their log lines and the status file, with generous timeouts; no test
asserts on how long anything took.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLONED, git
from tests.func.engine_helpers import Team, make_team

WAIT = 30.0
LOWER = ("limits: {calls: 100}", "limits: {calls: 50}")
RAISE = ("cost_usd: 50", "cost_usd: 80")


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    made = make_team(repo, tmp_path)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "The team's workspace", cwd=repo)
    return made


def commit(team: Team, change: tuple[str, str], message: str = "Change a budget") -> str:
    team.edit(".cloned/budgets.yaml", *change)
    git("commit", "-qam", message, cwd=team.repo)
    return head(team.repo)


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).strip()


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def applied_events(team: Team) -> list[dict[str, Any]]:
    log = team.run("audit", "log", "--type", "change.applied", "--json")
    assert log.code == 0, log.err
    return events(log.out)


def status(repo: Path) -> dict[str, Any]:
    return json.loads((repo / ".cloned" / "state" / "reconcile.json").read_text())  # type: ignore[no-any-return]


class Loop:
    """A `cloned reconcile` loop process whose JSON log lines are read as they come."""

    def __init__(self, team: Team, *args: str) -> None:
        env = {**os.environ, "CLONED_HOME": str(team.homes["operator"])}
        self.proc = subprocess.Popen(
            [str(CLONED), "reconcile", *args, "--log-format", "json"],
            cwd=team.repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.err: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(
            target=self._read, args=(self.proc.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=lambda: self.err.extend(self.proc.stderr or []), daemon=True
        ).start()

    @staticmethod
    def _read(stream: Any, into: queue.Queue[str]) -> None:
        for line in stream:
            into.put(line)

    def wait_for(self, test: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first event from now on that passes `test` (every line must be JSON)."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(
                    f"no {what} within {WAIT} s; log so far: {self.seen}; stderr: {self.err}"
                ) from None
            event = json.loads(line)
            assert {"ts", "event", "cycle"} <= event.keys()
            self.seen.append(event)
            if test(event):
                return event

    def event(self, name: str, **fields: Any) -> dict[str, Any]:
        def test(event: dict[str, Any]) -> bool:
            return event["event"] == name and all(event.get(k) == v for k, v in fields.items())

        return self.wait_for(test, f"{name} event with {fields}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=WAIT)
        while not self.lines.empty():
            self.seen.append(json.loads(self.lines.get()))
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def loops() -> Iterator[list[Loop]]:
    started: list[Loop] = []
    yield started
    for loop in started:
        loop.kill()


def test_once_applies_a_commit_makes_the_audit_commit_and_leaves_the_tree_clean(
    team: Team,
) -> None:
    first = team.run("reconcile", "--once")
    assert first.code == 0, first.out + first.err
    assert "event=cycle cycle=1 trigger=once" in first.out
    assert "changes=3 applied=3 exit_code=0" in first.out
    lowered = commit(team, LOWER)
    second = team.run("reconcile", "--once")
    assert second.code == 0, second.out + second.err
    assert f"head={lowered[:12]} changes=1 applied=1" in second.out
    made = status(team.repo)["last"]["audit_commit"]
    assert made["status"] == "committed"
    assert head(team.repo) == made["commit"]
    assert git("log", "-1", "--format=%s", cwd=team.repo).startswith("cloned: apply ")
    files = git("show", "--name-only", "--format=", "HEAD", cwd=team.repo).split()
    assert ".cloned/cloned.lock" in files
    assert all(f.startswith(".cloned/audit/") or f == ".cloned/cloned.lock" for f in files)
    assert git("status", "--porcelain", cwd=team.repo) == ""
    daily = [e for e in applied_events(team) if e["subject"] == "budget.daily"]
    assert [e["payload"]["action"] for e in daily] == ["create", "update"]


def test_a_dirty_tree_is_reported_and_skipped_unless_allowed(team: Team) -> None:
    assert team.run("reconcile", "--once").code == 0
    team.edit(".cloned/budgets.yaml", *LOWER)
    skipped = team.run("reconcile", "--once")
    assert skipped.code == 1
    assert "event=skipped" in skipped.out
    assert "files=.cloned/budgets.yaml" in skipped.out
    assert "--allow-dirty" in skipped.out
    assert len(applied_events(team)) == 3
    assert status(team.repo)["last"]["skipped"] is True
    allowed = team.run("reconcile", "--once", "--allow-dirty", "--log-format", "json")
    assert allowed.code == 0, allowed.out + allowed.err
    (cycle,) = [e for e in events(allowed.out) if e["event"] == "cycle"]
    assert cycle["outcomes"] == {"applied": 1}
    assert len(applied_events(team)) == 4
    # The audit commit holds Cloned's files only: the edit stays uncommitted.
    assert git("status", "--porcelain", cwd=team.repo).split() == ["M", ".cloned/budgets.yaml"]


def test_a_gated_change_opens_an_approval_request_and_once_exits_3(team: Team) -> None:
    assert team.run("reconcile", "--once").code == 0
    commit(team, RAISE)
    result = team.run("reconcile", "--once", "--log-format", "json")
    assert result.code == 3, result.out + result.err
    (cycle,) = [e for e in events(result.out) if e["event"] == "cycle"]
    assert cycle["outcomes"] == {"pending": 1}
    assert cycle["exit_code"] == 3
    (request,) = team.requests()
    assert (request["address"], request["status"]) == ("budget.monthly", "pending")


def test_watch_applies_a_commit_and_stops_cleanly_on_sigterm(team: Team, loops: list[Loop]) -> None:
    loop = Loop(team, "--watch")
    loops.append(loop)
    loop.event("started", mode="watch")
    first = loop.event("cycle", trigger="start")
    assert first["outcomes"] == {"applied": 3}
    loop.event("watching")
    lowered = commit(team, LOWER)
    applied = loop.wait_for(
        lambda e: e["event"] == "cycle" and e["head"] == lowered, "the cycle of the commit"
    )
    assert applied["outcomes"] == {"applied": 1}
    assert applied["audit_commit"] == head(team.repo)
    assert [e["payload"]["action"] for e in applied_events(team)][-1] == "update"
    assert loop.stop() == 0
    assert loop.seen[-1]["event"] == "stopped"
    assert loop.seen[-1]["reason"] == "SIGTERM"
    # The loop's own audit commits move HEAD but never trigger a cycle.
    made = {e["audit_commit"] for e in loop.seen if e["event"] == "cycle"}
    assert not [e for e in loop.seen if e["event"] == "cycle" and e["head"] in made]
    final = status(team.repo)
    assert final["state"] == "stopped"
    assert final["mode"] == "watch"
    assert final["last"]["head"] == lowered
    assert final["last"]["outcomes"] == {"applied": 1}
    assert git("status", "--porcelain", cwd=team.repo) == ""


def test_watch_reports_a_dirty_edit_and_applies_once_committed(
    team: Team, loops: list[Loop]
) -> None:
    loop = Loop(team, "--watch", "--debounce-ms", "20")
    loops.append(loop)
    loop.event("watching")
    team.edit(".cloned/budgets.yaml", *LOWER)
    skipped = loop.event("skipped")
    assert skipped["files"] == [".cloned/budgets.yaml"]
    git("commit", "-qam", "Lower the daily budget", cwd=team.repo)
    lowered = head(team.repo)
    loop.wait_for(lambda e: e["event"] == "cycle" and e["head"] == lowered, "the commit's cycle")
    assert loop.stop(signal.SIGINT) == 0


def test_interval_pulls_new_commits_from_a_remote_and_applies_them(
    team: Team, loops: list[Loop], tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=team.repo)
    git("push", "-q", "origin", "main", cwd=team.repo)
    loop = Loop(team, "--interval", "0.2", "--pull", "origin", "--no-commit")
    loops.append(loop)
    assert loop.event("cycle", trigger="start")["outcomes"] == {"applied": 3}
    other = tmp_path / "other"
    git("clone", "-q", str(remote), str(other), cwd=tmp_path)
    (other / ".cloned" / "budgets.yaml").write_text(
        (other / ".cloned" / "budgets.yaml").read_text().replace(*LOWER)
    )
    git("commit", "-qam", "Lower the daily budget", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    pushed = head(other)
    assert loop.event("pulled", remote="origin", branch="main")["head"] == pushed
    cycle = loop.event("cycle", trigger="pull")
    assert (cycle["head"], cycle["outcomes"], cycle["audit_commit"]) == (
        pushed,
        {"applied": 1},
        "off",
    )
    assert head(team.repo) == pushed
    assert loop.stop() == 0


def remote_with_clone(team: Team, tmp_path: Path) -> Path:
    """A bare "origin" holding the team's main, and another clone of it (returned)."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=team.repo)
    git("push", "-q", "origin", "main", cwd=team.repo)
    other = tmp_path / "other"
    git("clone", "-q", str(remote), str(other), cwd=tmp_path)
    return other


def test_the_loops_audit_commits_are_replayed_on_new_remote_commits(
    team: Team, loops: list[Loop], tmp_path: Path
) -> None:
    other = remote_with_clone(team, tmp_path)
    loop = Loop(team, "--interval", "0.2", "--pull", "origin")
    loops.append(loop)
    ours = loop.event("cycle", trigger="start")["audit_commit"]
    assert ours == head(team.repo)
    (other / "README.md").write_text("news\n")
    git("add", "README.md", cwd=other)
    git("commit", "-qm", "A commit the loop's branch lacks", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    theirs = head(other)
    pulled = loop.event("pulled", remote="origin", branch="main")
    # Only the loop's own commit was ahead: it now sits on top of the remote's.
    assert git("rev-parse", "HEAD~1", cwd=team.repo).strip() == theirs
    assert pulled["head"] == head(team.repo) != ours
    assert git("log", "-1", "--format=%s", cwd=team.repo).startswith("cloned: apply ")
    assert loop.stop() == 0
    assert [e for e in loop.seen if e["event"] == "error"] == []


def test_push_sends_the_audit_commits_to_the_remote(
    team: Team, loops: list[Loop], tmp_path: Path
) -> None:
    other = remote_with_clone(team, tmp_path)
    loop = Loop(team, "--interval", "0.2", "--pull", "origin", "--push")
    loops.append(loop)
    first = loop.event("cycle", trigger="start")["audit_commit"]
    git("pull", "-q", "--ff-only", cwd=other)
    assert head(other) == first
    (other / ".cloned" / "budgets.yaml").write_text(
        (other / ".cloned" / "budgets.yaml").read_text().replace(*LOWER)
    )
    git("commit", "-qam", "Lower the daily budget", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    cycle = loop.event("cycle", trigger="pull")
    assert cycle["outcomes"] == {"applied": 1}
    assert loop.stop() == 0
    git("pull", "-q", "--ff-only", cwd=other)
    assert head(other) == cycle["audit_commit"] == head(team.repo)


def test_a_pull_that_diverged_otherwise_is_an_error_and_the_loop_goes_on(
    team: Team, loops: list[Loop], tmp_path: Path
) -> None:
    other = remote_with_clone(team, tmp_path)
    (team.repo / "NOTES.md").write_text("local only\n")
    git("add", "NOTES.md", cwd=team.repo)
    git("commit", "-qm", "A local commit that is not Cloned's", cwd=team.repo)
    local = head(team.repo)
    (other / "README.md").write_text("diverge\n")
    git("add", "README.md", cwd=other)
    git("commit", "-qm", "A commit the loop's branch lacks", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    loop = Loop(team, "--interval", "0.2", "--pull", "origin", "--no-commit")
    loops.append(loop)
    error = loop.event("error")
    assert "the branches diverged" in error["error"]
    assert local[:12] in error["error"]
    assert error["backoff"] == 1
    assert loop.proc.poll() is None
    assert loop.stop() == 0


def test_an_error_is_logged_with_backoff_and_the_loop_recovers(
    team: Team, loops: list[Loop]
) -> None:
    loop = Loop(team, "--watch")
    loops.append(loop)
    loop.event("watching")
    (team.repo / ".cloned" / "broken.yaml").write_text("apiVersion: cloned/v1\nkind: [\n")
    git("add", ".cloned/broken.yaml", cwd=team.repo)
    git("commit", "-qm", "Broken YAML", cwd=team.repo)
    error = loop.event("error")
    assert error["error"] == "1 problem found"
    assert error["problems"][0].startswith(".cloned/broken.yaml:")
    assert (error["backoff"], error["consecutive_errors"]) == (1, 1)
    assert status(team.repo)["consecutive_errors"] >= 1
    assert loop.proc.poll() is None
    git("rm", "-q", ".cloned/broken.yaml", cwd=team.repo)
    git("commit", "-qm", "Remove the broken file", cwd=team.repo)
    fixed = head(team.repo)
    recovered = loop.wait_for(
        lambda e: e["event"] == "cycle" and e["head"] == fixed, "the cycle after the fix"
    )
    assert recovered["exit_code"] == 0
    assert status(team.repo)["consecutive_errors"] == 0
    assert loop.stop() == 0


def tamper(repo: Path) -> None:
    """Edit an applied record behind Cloned's back (as a test may: sqlite3 directly)."""
    with sqlite3.connect(repo / ".cloned" / "state" / "cloned.db") as db:
        db.execute(
            "UPDATE resources SET state = replace(state, '100', '500') "
            "WHERE address = 'budget.daily'"
        )


def test_drift_is_reported_and_repaired_with_self_heal(team: Team) -> None:
    assert team.run("reconcile", "--once").code == 0
    tamper(team.repo)
    reported = team.run("reconcile", "--once", "--log-format", "json")
    assert reported.code == 0, reported.err
    (found,) = [e for e in events(reported.out) if e["event"] == "drift"]
    assert found["items"] == [
        {
            "kind": "modified",
            "address": "budget.daily",
            "detail": "its content no longer matches what was applied",
        }
    ]
    assert found["healed"] is False
    assert team.run("drift").code == 2
    healed = team.run("reconcile", "--once", "--self-heal", "--log-format", "json")
    assert healed.code == 0, healed.err
    repairs = [e for e in events(healed.out) if e["event"] == "healed"]
    assert repairs[0]["repairs"] == [{"address": "budget.daily", "action": "restored"}]
    assert status(team.repo)["last"]["repairs"] == repairs[0]["repairs"]
    assert team.run("drift").code == 0


def test_interval_finds_drift_between_cycles_and_heals_it(team: Team, loops: list[Loop]) -> None:
    loop = Loop(team, "--interval", "0.2", "--self-heal")
    loops.append(loop)
    loop.event("cycle", trigger="start")
    tamper(team.repo)
    loop.event("healed")
    assert loop.event("cycle", trigger="drift")["repairs"] == 1
    assert loop.stop() == 0
    assert team.run("drift").code == 0


def test_status_says_what_the_last_run_did(team: Team) -> None:
    missing = team.run("reconcile", "--status")
    assert missing.code == 1
    assert "no reconcile has run here" in missing.err
    # Real processes: the status tells whether the process that wrote it is still alive.
    assert team.run("reconcile", "--once", process=True).code == 0
    commit(team, RAISE)
    assert team.run("reconcile", "--once", process=True).code == 3
    shown = team.run("reconcile", "--status")
    assert shown.code == 0, shown.err
    assert "Reconcile (once, pid " in shown.out
    assert ": stopped." in shown.out
    assert "1 cycle(s), 0 consecutive error(s)" in shown.out
    assert "1 awaiting approval (exit 3); audit commit " in shown.out
    data = json.loads(team.run("reconcile", "--status", "--json").out)
    assert data["alive"] is False
    assert data["last"]["outcomes"] == {"pending": 1}
    assert data["last"]["exit_code"] == 3
    assert {"pid", "host", "started_at", "mode", "cycles", "consecutive_errors"} <= data.keys()
    assert "next_backoff" in data


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "choose exactly one of --once, --watch or --interval SECONDS"),
        (("--once", "--watch"), "(got --once and --watch)"),
        (("--interval", "0"), "--interval: must be more than 0 seconds (got 0)"),
        (("--interval", "inf"), "--interval: must be a finite number of seconds (got inf)"),
        (("--watch", "--pull", "origin"), "--pull: only with --interval or --once"),
        (("--once", "--log-format", "xml"), "--log-format: must be text or json (got 'xml')"),
        (("--watch", "--debounce-ms", "0"), "--debounce-ms: must be 1 to 60000 (got 0)"),
        (("--watch", "--max-backoff", "0"), "--max-backoff: must be more than 0 seconds"),
        (("--once", "--json"), "--json: only with --status"),
        (("--status", "--once"), "--status: cannot be combined with --once"),
    ],
)
def test_bad_flags_exit_1_naming_the_flag(team: Team, args: tuple[str, ...], message: str) -> None:
    result = team.run("reconcile", *args)
    assert result.code == 1
    assert message in result.err
    assert not (team.repo / ".cloned" / "state").exists()


def test_a_loop_outside_git_fails_at_start(tmp_path: Path) -> None:
    from tests.conftest import WORKSPACE_YAML, cloned, write

    write(tmp_path / "plain", ".cloned/workspace.yaml", WORKSPACE_YAML)
    result = cloned("reconcile", "--watch", cwd=tmp_path / "plain")
    assert result.code == 1
    assert "is not inside a git work tree" in result.err
