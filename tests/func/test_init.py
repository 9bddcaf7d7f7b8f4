"""`cloned init`: a usable workspace in one command, and never over an existing one."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import cloned, git, snapshot, write


def test_init_creates_repo_workspace_key_and_gitignore(tmp_path: Path, hermetic_env: Path) -> None:
    target = tmp_path / "agents"
    result = cloned("init", str(target))
    assert result.code == 0, result.err
    assert (target / ".git").is_dir()
    assert "Initialised a git repository" in result.out
    assert "Next steps:" in result.out
    assert ".cloned/state/" in (target / ".gitignore").read_text().splitlines()

    private, public = hermetic_env / "keys" / "tester", hermetic_env / "keys" / "tester.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    public_line = public.read_text().strip()
    assert public_line.startswith("ssh-ed25519 ") and public_line.endswith(" tester")
    workspace = (target / ".cloned" / "workspace.yaml").read_text()
    assert public_line in workspace
    assert "groups: [admins]" in workspace
    assert "policyPacks: [baseline]" in workspace
    assert "kind: Budget" in (target / ".cloned" / "budgets.yaml").read_text()

    check = cloned("validate", cwd=target)
    assert check.code == 0, check.err
    assert "Workspace" in check.out and "Budget" in check.out


def test_init_in_existing_repo_reuses_key_and_keeps_gitignore(
    repo: Path, hermetic_env: Path
) -> None:
    first = cloned("keys", "generate", "tester")
    assert first.code == 0
    write(repo, ".gitignore", "node_modules/")
    result = cloned("init", cwd=repo)
    assert result.code == 0, result.err
    assert "Initialised a git repository" not in result.out
    assert "Using existing approver key 'tester'" in result.out
    assert first.out.strip() in (repo / ".cloned" / "workspace.yaml").read_text()
    assert (repo / ".gitignore").read_text() == (
        "node_modules/\n# Cloned's local state database and caches\n.cloned/state/\n"
    )
    assert git("status", "--porcelain", cwd=repo).split() == ["??", ".cloned/", "??", ".gitignore"]


def test_init_refuses_to_overwrite_a_workspace(repo: Path) -> None:
    write(repo, ".cloned/workspace.yaml", "# mine\n")
    before = snapshot(repo)
    result = cloned("init", cwd=repo)
    assert result.code == 1
    assert "already exists: refusing to overwrite a workspace" in result.err
    assert snapshot(repo) == before
    assert (repo / ".cloned" / "workspace.yaml").read_text() == "# mine\n"


def test_init_names_the_workspace_after_the_folder_or_flag(tmp_path: Path) -> None:
    assert cloned("init", str(tmp_path / "My Team_Agents")).code == 0
    text = (tmp_path / "My Team_Agents" / ".cloned" / "workspace.yaml").read_text()
    assert "  name: my-team-agents\n" in text
    assert cloned("init", str(tmp_path / "b"), "--name", "research").code == 0
    assert "  name: research\n" in (tmp_path / "b" / ".cloned" / "workspace.yaml").read_text()


def test_init_on_a_file_fails_clearly(tmp_path: Path) -> None:
    write(tmp_path, "afile", "x")
    result = cloned("init", str(tmp_path / "afile"))
    assert result.code == 1
    assert "exists and is not a folder" in result.err
    assert "Traceback" not in result.err
