"""Reading a workspace from git objects picks the same files as reading the working tree, and
follows committed symlinks only to files inside the same commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler import gitrepo
from reconciler.errors import ClonedError
from reconciler.load.files import MAX_FILE_BYTES, committed_sources, discover, is_resource_path
from tests.conftest import WORKSPACE_YAML, git, write


@pytest.mark.parametrize(
    ("rel", "wanted"),
    [
        (".cloned/workspace.yaml", True),
        (".cloned/policy/extra.yml", True),
        (".cloned/cloned.lock", False),
        (".cloned/notes.txt", False),
        (".cloned/.hidden.yaml", False),
        (".cloned/.drafts/a.yaml", False),
        (".cloned/approvals/x.yaml", False),
        (".cloned/audit/a.yaml", False),
        (".cloned/state/a.yaml", False),
        (".cloned/policy/approvals/a.yaml", True),  # reserved only at the top
        ("other/a.yaml", False),
    ],
)
def test_resource_paths_follow_the_discovery_rules(rel: str, wanted: bool) -> None:
    assert is_resource_path(rel) is wanted


def commit(repo: Path) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "x", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def test_committed_files_equal_the_working_tree(repo: Path) -> None:
    write(repo, ".cloned/workspace.yaml", WORKSPACE_YAML)
    write(repo, ".cloned/policy/a.yaml", "a: 1\n")
    write(repo, ".cloned/approvals/r/alice.json", "{}")
    write(repo, ".cloned/.hidden.yaml", "x: 1\n")
    at = commit(repo)
    files, unreadable = gitrepo.read_files(repo, at, ".cloned", max_bytes=MAX_FILE_BYTES)
    sources, problems = committed_sources(
        [(f.rel, f.data) for f in files], [(u.rel, u.reason) for u in unreadable]
    )
    assert sources == discover(repo)[0]
    assert problems == []


def test_a_workspace_below_the_top_of_the_repository(repo: Path) -> None:
    root = repo / "team" / "agents"
    write(root, ".cloned/workspace.yaml", WORKSPACE_YAML)
    at = commit(repo)
    files, _ = gitrepo.read_files(root, at, ".cloned", max_bytes=MAX_FILE_BYTES)
    assert [f.rel for f in files] == [".cloned/workspace.yaml"]
    data = gitrepo.read_file(root, at, ".cloned/workspace.yaml", max_bytes=MAX_FILE_BYTES)
    assert data == WORKSPACE_YAML.encode()
    assert gitrepo.read_file(root, at, ".cloned/cloned.lock", max_bytes=10) is None


def test_committed_symlinks_stay_inside_the_commit(repo: Path) -> None:
    write(repo, "shared/budgets.yaml", "b: 1\n")
    write(repo, ".cloned/workspace.yaml", WORKSPACE_YAML)
    os.symlink("../shared/budgets.yaml", repo / ".cloned/budgets.yaml")
    os.symlink("/etc/passwd", repo / ".cloned/escape.yaml")
    os.symlink("missing.yaml", repo / ".cloned/dangling.yaml")
    os.symlink("../shared", repo / ".cloned/folder.yaml")
    at = commit(repo)
    files, unreadable = gitrepo.read_files(repo, at, ".cloned", max_bytes=MAX_FILE_BYTES)
    by_rel = {f.rel: f.data for f in files}
    assert by_rel[".cloned/budgets.yaml"] == b"b: 1\n"
    reasons = {u.rel: u.reason for u in unreadable}
    assert reasons == {
        ".cloned/escape.yaml": "symlink points outside the repository (/etc/passwd)",
        ".cloned/dangling.yaml": "symlink points to nothing in this commit (missing.yaml)",
        ".cloned/folder.yaml": "symlink points to a folder (../shared); only file links are "
        "followed",
    }


def test_large_committed_files_are_reported_not_read(repo: Path) -> None:
    write(repo, ".cloned/big.yaml", "x" * 100)
    at = commit(repo)
    files, unreadable = gitrepo.read_files(repo, at, ".cloned", max_bytes=50)
    assert files == []
    assert unreadable[0].reason == "file is 100 bytes; the limit is 50"


def test_unknown_revisions_name_the_flag(repo: Path) -> None:
    write(repo, ".cloned/workspace.yaml", WORKSPACE_YAML)
    commit(repo)
    with pytest.raises(ClonedError, match="--base: 'nope' names no commit"):
        gitrepo.resolve(repo, "nope")
