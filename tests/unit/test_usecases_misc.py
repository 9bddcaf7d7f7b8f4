"""The use cases behind `cloned init`, `keys`, `policy show` and `audit log|verify`, called
directly on real temporary workspaces: what each returns, typed, and the JSON it knows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.audit import append, export
from reconciler.errors import ClonedError, ExitCode, WorkspaceNotFound
from reconciler.redact import Redactor
from reconciler.state.db import DB_FILE, StateDB
from reconciler.usecases import audit, init, keys, policy
from tests.conftest import cloned, copy_quickstart, write

# --- keys ----------------------------------------------------------------------------------------


def test_generate_returns_the_new_key_pair(hermetic_env: Path) -> None:
    result = keys.generate(name="alice")
    assert result.exit_code == ExitCode.OK
    assert result.key.name == "alice"
    assert result.key.public_key.startswith("ssh-ed25519 ")
    assert result.key.public_key.endswith(" alice")
    assert result.key.private_path == hermetic_env / "keys" / "alice"
    assert result.to_json() == {
        "name": "alice",
        "public_key": result.key.public_key,
        "fingerprint": result.key.fingerprint,
        "has_private_key": True,
    }


@pytest.mark.parametrize("name", ["Alice", "al ice", "-alice", "alice\n", "a" * 64, ""])
def test_generate_refuses_a_bad_name_and_writes_nothing(hermetic_env: Path, name: str) -> None:
    with pytest.raises(ClonedError, match="invalid key name"):
        keys.generate(name=name)
    assert not (hermetic_env / "keys").exists()


def test_generate_refuses_a_taken_name(hermetic_env: Path) -> None:
    first = keys.generate(name="alice")
    with pytest.raises(ClonedError, match='key "alice" already exists'):
        keys.generate(name="alice")
    assert (hermetic_env / "keys" / "alice.pub").read_text() == first.key.public_key + "\n"


def test_list_keys_names_the_folder_and_each_pair(hermetic_env: Path) -> None:
    empty = keys.list_keys()
    assert (empty.folder, empty.keys, empty.to_json()) == (hermetic_env / "keys", (), [])
    bob, alice = keys.generate(name="bob").key, keys.generate(name="alice").key
    (hermetic_env / "keys" / "bob").unlink()
    listed = keys.list_keys()
    assert listed.exit_code == ExitCode.OK
    assert [key.name for key in listed.keys] == ["alice", "bob"]
    assert listed.keys[0] == alice
    assert listed.keys[1].private_path is None
    assert [item["has_private_key"] for item in listed.to_json()] == [True, False]
    assert listed.to_json()[1]["fingerprint"] == bob.fingerprint


# --- init ----------------------------------------------------------------------------------------


def test_init_creates_a_repository_workspace_and_key(tmp_path: Path, hermetic_env: Path) -> None:
    result = init.init(path=tmp_path / "new", name="My Team")
    root = (tmp_path / "new").resolve()
    assert result.exit_code == ExitCode.OK
    assert (result.root, result.created_repo, result.gitignore_updated) == (root, True, True)
    assert result.files == (".cloned/workspace.yaml", ".cloned/budgets.yaml")
    assert (result.key.name, result.key_created) == ("tester", True)
    assert result.key.private_path == hermetic_env / "keys" / "tester"
    assert "name: my-team" in (root / ".cloned" / "workspace.yaml").read_text()
    assert result.to_json()["key"] == keys.key_json(result.key)
    assert result.to_json()["files"] == list(result.files)


def test_init_reuses_a_key_and_a_repository(repo: Path) -> None:
    existing = keys.generate(name="dana").key
    result = init.init(path=repo, user="dana")
    assert (result.created_repo, result.key_created, result.key) == (False, False, existing)
    assert existing.public_key in (repo / ".cloned" / "workspace.yaml").read_text()


def test_init_refuses_an_existing_workspace(workspace: Path) -> None:
    before = (workspace / ".cloned" / "workspace.yaml").read_text()
    with pytest.raises(ClonedError, match="refusing to overwrite a workspace"):
        init.init(path=workspace)
    assert (workspace / ".cloned" / "workspace.yaml").read_text() == before


# --- policy show ---------------------------------------------------------------------------------


@pytest.fixture
def quickstart(repo: Path) -> Path:
    return copy_quickstart(repo)


def test_show_lists_the_active_packs_and_their_rules(quickstart: Path) -> None:
    result = policy.show(path=quickstart / ".cloned" / "policy")
    assert result.exit_code == ExitCode.OK
    assert (result.root, result.error) == (quickstart.resolve(), None)
    assert result.source == ".cloned/ (nothing applied yet)"
    assert result.pack_names == ("baseline", "research-overlay")
    assert (result.packs[0].pack.builtin, result.packs[1].pack.extends) == (True, "baseline")
    raise_rule = next(r for r in result.rules if r.rule.id == "baseline/budget-raise")
    assert raise_rule.decision == "approval: 1 from admins"
    assert raise_rule.when == "Budget update or replace; unless it tightens"
    assert result.inactive == ()
    rules = result.to_json()
    assert isinstance(rules, list)
    assert [rule["rule"] for rule in rules] == [shown.rule.id for shown in result.rules]
    assert rules[0]["when"] == result.rules[0].when


def test_show_names_declared_packs_the_workspace_does_not_list(quickstart: Path) -> None:
    edit_packs(quickstart, "[baseline]")
    result = policy.show(path=quickstart)
    assert result.pack_names == ("baseline",)
    assert result.inactive == ("research-overlay",)


def test_show_is_the_applied_policy_unless_desired_is_asked(quickstart: Path) -> None:
    assert cloned("apply", cwd=quickstart).code == 0
    edit_packs(quickstart, "[baseline]")
    applied = policy.show(path=quickstart)
    assert applied.source == "the applied state (state database)"
    assert applied.pack_names == ("baseline", "research-overlay")
    proposed = policy.show(path=quickstart, desired=True)
    assert (proposed.source, proposed.pack_names) == (".cloned/ (desired state)", ("baseline",))
    (quickstart / DB_FILE).unlink()
    from_lock = policy.show(path=quickstart)
    assert from_lock.source == "the applied state (cloned.lock)"


def test_show_of_an_invalid_state_is_a_result_with_every_problem(workspace: Path) -> None:
    write(workspace, ".cloned/bad.yaml", "apiVersion: cloned/v1\nkind: Budget\nmetadata: {}\n")
    result = policy.show(path=workspace)
    assert result.exit_code == ExitCode.ERROR
    assert result.error == f"{len(result.problems)} problems found"
    assert result.packs == ()
    assert {problem.path for problem in result.problems} == {".cloned/bad.yaml"}
    assert result.to_json() == {
        "error": result.error,
        "exit_code": 1,
        "problems": [problem.to_json() for problem in result.problems],
    }
    assert not (workspace / DB_FILE).exists()


def test_show_outside_a_workspace_raises(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFound):
        policy.show(path=tmp_path)


def edit_packs(repo: Path, packs: str) -> None:
    path = repo / ".cloned" / "workspace.yaml"
    text = path.read_text()
    assert "policyPacks: [baseline, research-overlay]" in text
    path.write_text(text.replace("[baseline, research-overlay]", packs))


# --- audit log and verify ------------------------------------------------------------------------


SEGMENTS = ".cloned/audit/segments"
SECOND = f"{SEGMENTS}/00000006-00000010.jsonl"


@pytest.fixture
def logged(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose state database holds ten events, exported in two segments."""
    monkeypatch.setenv("CLONED_NOW", "2026-03-01T09:30:00+00:00")
    with StateDB.open(workspace) as db:
        assert db is not None
        for first, subject in ((1, "budget.daily"), (6, "budget.monthly")):
            with db.transaction() as connection:
                for seq in range(first, first + 5):
                    kind = "change.applied" if seq % 2 else "approval.granted"
                    append(
                        connection,
                        actor="alice",
                        type=kind,
                        subject=subject,
                        payload={"n": seq},
                        redactor=Redactor(),
                    )
            export(db, workspace)
    return workspace


def test_log_returns_typed_events_from_the_database(logged: Path) -> None:
    result = audit.log(path=logged / ".cloned")
    assert (result.root, result.database, result.exit_code) == (logged, True, ExitCode.OK)
    assert [event.seq for event in result.events] == list(range(1, 11))
    event = result.events[6]
    assert (event.type, event.subject, event.payload) == (
        "change.applied",
        "budget.monthly",
        {"n": 7},
    )
    assert result.to_json()[6] == event.to_json()
    committed = (logged / f"{SEGMENTS}/00000001-00000005.jsonl").read_text().splitlines()
    assert result.lines() == (*committed, *(logged / SECOND).read_text().splitlines())


def test_log_filters_by_since_type_and_subject(logged: Path) -> None:
    def seqs(**filters: str) -> list[int]:
        return [event.seq for event in audit.log(path=logged, **filters).events]

    assert seqs(since="8") == [8, 9, 10]
    assert seqs(type="approval") == [2, 4, 6, 8, 10]
    assert seqs(type="approval.granted", subject="budget.daily") == [2, 4]
    assert seqs(type="approv") == []
    assert seqs(since="2026-03-02") == []
    assert seqs(since="2026-03-01T09:30:00Z", subject="budget.monthly") == [6, 7, 8, 9, 10]


def test_log_refuses_a_bad_since(logged: Path) -> None:
    with pytest.raises(ClonedError, match="neither an event number nor a date or time"):
        audit.log(path=logged, since="yesterday")
    with pytest.raises(ClonedError, match="has no UTC offset"):
        audit.log(path=logged, since="2026-03-01T09:30:00")


def test_log_reads_the_segments_without_a_database(logged: Path) -> None:
    from_db = audit.log(path=logged, since="4")
    (logged / DB_FILE).unlink()
    from_segments = audit.log(path=logged, since="4")
    assert from_segments.database is False
    assert from_segments.events == from_db.events


def test_verify_passes_and_counts(logged: Path) -> None:
    result = audit.verify(path=logged)
    assert (result.ok, result.exit_code, result.problems) == (True, ExitCode.OK, ())
    report = result.report
    assert (report.events, report.exported, report.checkpoints, report.database) == (
        10,
        10,
        2,
        True,
    )
    assert report.head == json.loads((logged / SECOND).read_text().splitlines()[-1])["hash"]
    assert result.to_json() == {"root": str(logged), **report.to_json()}


def test_verify_of_a_tampered_segment_names_the_event(logged: Path) -> None:
    path = logged / SECOND
    content = path.read_text().splitlines()
    content[2] = content[2].replace('"n":8', '"n":800')
    path.write_text("".join(line + "\n" for line in content))
    result = audit.verify(path=logged)
    assert (result.ok, result.exit_code) == (False, ExitCode.ERROR)
    assert result.problems[0].seq == 8
    assert result.problems[0].message == (
        f"event 8 ({SECOND} line 3): hash does not match its content"
    )
    shown = result.to_json()
    assert (shown["verified"], shown["problems"][0]) == (False, result.problems[0].to_json())


def test_verify_without_a_database_checks_the_committed_log(logged: Path) -> None:
    (logged / DB_FILE).unlink()
    result = audit.verify(path=logged)
    assert (result.ok, result.report.database, result.report.events) == (True, False, 10)
    assert not (logged / DB_FILE).exists()
