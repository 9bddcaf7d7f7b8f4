"""`cloned validate` on good input: the summary, JSON for CI, subfolders and the cache."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cloned, copy_quickstart, snapshot, write


def quickstart(repo: Path) -> Path:
    return copy_quickstart(repo)


def test_summary_by_kind(repo: Path) -> None:
    result = cloned("validate", cwd=quickstart(repo))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"Valid: 11 resources in 7 files ({repo.resolve() / '.cloned'})"
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:]}
    assert counts == {
        "Workspace": 1,
        "PolicyPack": 1,
        "Budget": 3,
        "Registry": 1,
        "Connector": 2,
        "SecretRef": 1,
        "Model": 1,
        "Pipeline": 1,
    }


def test_json_for_ci(repo: Path) -> None:
    result = cloned("validate", "--json", cwd=quickstart(repo))
    assert result.code == 0
    payload = json.loads(result.out)
    assert payload["valid"] is True
    assert payload["resources"] == 11
    assert payload["kinds"]["Blueprint"] == 0
    assert payload["problems"] == []


def test_works_from_any_subfolder_and_with_a_path(repo: Path, tmp_path: Path) -> None:
    quickstart(repo)
    deep = repo / "src" / "deep"
    deep.mkdir(parents=True)
    assert cloned("validate", cwd=deep).code == 0
    assert cloned("validate", str(deep), cwd=tmp_path).code == 0
    assert cloned("validate", str(repo / ".cloned"), cwd=tmp_path).code == 0


def test_outside_any_workspace(tmp_path: Path) -> None:
    result = cloned("validate", cwd=tmp_path)
    assert result.code == 1
    assert "no .cloned/ folder" in result.err
    assert "cloned init" in result.err


def test_reserved_folders_and_other_files_are_ignored(workspace: Path) -> None:
    write(workspace, ".cloned/approvals/a.yaml", "not: [a resource")
    write(workspace, ".cloned/audit/0001.yaml", "{{{")
    write(workspace, ".cloned/state/x.yaml", "\tbad")
    write(workspace, ".cloned/README.md", "# notes")
    write(workspace, ".cloned/.hidden.yaml", "{{{")
    result = cloned("validate", cwd=workspace)
    assert result.code == 0, result.err
    assert result.out.startswith("Valid: 1 resource in 1 file")


def test_warm_run_uses_cache_and_sees_every_edit(workspace: Path) -> None:
    budget = """\
apiVersion: cloned/v1
kind: Budget
metadata: {name: b}
spec: {scope: {workspace: true}, limits: {calls: 1}}
"""
    write(workspace, ".cloned/budgets.yaml", budget)
    assert cloned("validate", cwd=workspace).code == 0
    cache = workspace / ".cloned" / "state" / "cache" / "resources.json"
    assert cache.is_file()
    assert (workspace / ".cloned" / "state" / ".gitignore").read_text().endswith("*\n")
    # An edit with the same size is still seen: the cache keys on content, not on mtime/size.
    write(workspace, ".cloned/budgets.yaml", budget.replace("calls: 1", "calls: x"))
    result = cloned("validate", cwd=workspace)
    assert result.code == 1
    assert ".cloned/budgets.yaml:4:50: spec.limits.calls: expected an integer" in result.err


def test_a_corrupt_cache_is_ignored(workspace: Path) -> None:
    write(workspace, ".cloned/state/cache/resources.json", "{not json")
    result = cloned("validate", cwd=workspace)
    assert result.code == 0, result.err


def test_no_cache_writes_nothing(workspace: Path) -> None:
    before = snapshot(workspace)
    assert cloned("validate", "--no-cache", cwd=workspace).code == 0
    assert snapshot(workspace) == before


def test_missing_path_is_an_error_not_a_search_upwards(workspace: Path) -> None:
    result = cloned("validate", "nope/inside", cwd=workspace)
    assert result.code == 1
    assert "nope/inside: no such file or folder" in result.err


def test_an_unwritable_cache_does_not_fail_validation(workspace: Path) -> None:
    # A file where the cache folder should be makes every cache write fail, even for root.
    blocker = write(workspace, ".cloned/state/cache", "not a folder")
    result = cloned("validate", cwd=workspace)
    assert result.code == 0, result.err
    assert blocker.read_text() == "not a folder"


def test_tabs_inside_block_scalars_are_text_not_indentation(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/secret.yaml",
        "apiVersion: cloned/v1\nkind: SecretRef\nmetadata: {name: s}\nspec:\n"
        "  ref: vault://s\n  description: |\n    first line\n    \tindented with a tab\n",
    )
    result = cloned("validate", cwd=workspace)
    assert result.code == 0, result.err


def test_json_outside_a_workspace_is_still_json(tmp_path: Path) -> None:
    result = cloned("validate", "--json", cwd=tmp_path)
    assert result.code == 1
    payload = json.loads(result.out)
    assert payload["valid"] is False
    assert "no .cloned/ folder" in payload["error"]


def test_valid_documents_of_a_rejected_file_are_still_cross_checked(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/mixed.yaml",
        "apiVersion: cloned/v1\nkind: Budget\nmetadata: {name: x}\n"
        "spec: {scope: {connector: ghub}, limits: {calls: 1}}\n---\n[1, 2]\n",
    )
    result = cloned("validate", cwd=workspace)
    assert result.code == 1
    assert result.err.splitlines()[:2] == [
        '.cloned/mixed.yaml:4:16: spec.scope.connector: no Connector named "ghub"',
        ".cloned/mixed.yaml:6:1: a resource must be a mapping, got a list",
    ]


def test_an_unparsable_file_does_not_also_report_references_to_what_it_declares(
    workspace: Path,
) -> None:
    write(workspace, ".cloned/budgets.yaml", "apiVersion: cloned/v1\nkind: [\n")
    write(
        workspace,
        ".cloned/run.yaml",
        "apiVersion: cloned/v1\nkind: Run\nmetadata: {name: r}\nspec: {pipeline: nightly}\n",
    )
    result = cloned("validate", cwd=workspace)
    assert result.code == 1
    assert "no Pipeline named" not in result.err
    assert result.err.startswith(".cloned/budgets.yaml:3:1: invalid YAML")


def test_a_models_key_and_a_model_step_must_name_what_is_declared(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/models.yaml",
        "apiVersion: cloned/v1\nkind: Model\nmetadata: {name: local}\n"
        "spec: {api: openai-chat, baseUrl: 'http://127.0.0.1:8000/v1', model: q,"
        " apiKey: model-kee}\n---\n"
        "apiVersion: cloned/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  steps:\n"
        "    - name: draft\n      model: {name: locl, prompt: hi, maxTokens: 10}\n",
    )
    write(
        workspace,
        ".cloned/secrets.yaml",
        "apiVersion: cloned/v1\nkind: SecretRef\nmetadata: {name: model-key}\n"
        "spec: {ref: 'vault://model-key', usedBy: {pipelines: [p]}}\n",
    )
    result = cloned("validate", cwd=workspace)
    assert result.code == 1
    assert result.err.splitlines()[:2] == [
        '.cloned/models.yaml:4:73: spec.apiKey: no SecretRef named "model-kee"'
        ' (did you mean "model-key"?)',
        '.cloned/models.yaml:12:15: spec.steps[0].model.name: no Model named "locl"'
        ' (did you mean "local"?)',
    ]
    write(workspace, ".cloned/models.yaml", _fixed_models())
    result = cloned("validate", cwd=workspace)
    assert result.code == 0, result.err
    assert "  Model            1" in result.out.splitlines()


def _fixed_models() -> str:
    return (
        "apiVersion: cloned/v1\nkind: Model\nmetadata: {name: local}\n"
        "spec: {api: openai-chat, baseUrl: 'http://127.0.0.1:8000/v1', model: q,"
        " apiKey: model-key}\n---\n"
        "apiVersion: cloned/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  steps:\n"
        "    - name: draft\n      model: {name: local, prompt: hi, maxTokens: 10}\n"
    )
