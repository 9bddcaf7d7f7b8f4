"""The use cases behind `cloned init`, `keys` and `policy show`, called directly on real temporary
workspaces: what each returns, typed, and the JSON it knows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.errors import ClonedError, ExitCode, WorkspaceNotFound
from reconciler.state.db import DB_FILE
from reconciler.usecases import init, keys, policy
from tests.conftest import QUICKSTART, cloned, write

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
    shutil.copytree(
        QUICKSTART / ".cloned", repo / ".cloned", ignore=shutil.ignore_patterns("state")
    )
    return repo


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
