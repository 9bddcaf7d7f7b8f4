"""Pipelines through the CLI: templates and Run inputs checked by `cloned validate`, tool steps
checked against the planned connectors by `cloned plan`, and Pipelines planned and applied as
managed records (the quickstart's included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cloned, commit_all, copy_quickstart, snapshot, write

NOTES = """\
apiVersion: cloned/v1
kind: Connector
metadata:
  name: notes
spec:
  source: {builtin: notes}
  version: 0.1.0
  publisher: cloned
  tools:
    allow: [add_note, list_notes]
"""

PIPELINE = """\
apiVersion: cloned/v1
kind: Pipeline
metadata:
  name: triage
spec:
  inputs:
    topic: {type: string, required: true}
    limit: {type: integer, default: 5}
  steps:
    - name: notes
      tool: {connector: notes, name: list_notes}
    - name: add
      tool: {connector: notes, name: add_note}
      with:
        title: "Notes on ${inputs.topic}"
        body: "${steps.notes.output}"
  outputs:
    count: {from: "length(steps.notes.output)"}
"""

RUN = """\
apiVersion: cloned/v1
kind: Run
metadata:
  name: weekly
spec:
  pipeline: triage
  inputs: {topic: MCP}
"""


@pytest.fixture
def triage(workspace: Path) -> Path:
    write(workspace, ".cloned/notes.yaml", NOTES)
    write(workspace, ".cloned/pipeline.yaml", PIPELINE)
    write(workspace, ".cloned/run.yaml", RUN)
    return workspace


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def assert_refused(repo: Path, command: str, *lines: str) -> None:
    """`command` exits 1 with exactly `lines` on stderr (then the summary), writing nothing."""
    before = snapshot(repo)
    result = cloned(command, cwd=repo)
    assert result.code == 1, result.out + result.err
    assert result.err.splitlines()[:-1] == list(lines), result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before, f"{command} wrote into the repository"


def test_a_valid_pipeline_and_run_validate(triage: Path) -> None:
    result = cloned("validate", cwd=triage)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "Notes on ${inputs.topic}",
            "Notes on ${inputs.topc}",
            ".cloned/pipeline.yaml:15:9: spec.steps[1].with.title: ${inputs.topc}: the pipeline "
            'has no input "topc" (did you mean "topic"?)',
        ),
        (
            "${steps.notes.output}",
            "${steps.add.output}",
            '.cloned/pipeline.yaml:16:9: spec.steps[1].with.body: ${steps.add.output}: step "add" '
            "is this step: a step reads only the steps before it",
        ),
        (
            "    - name: notes\n      tool: {connector: notes, name: list_notes}\n",
            "    - name: notes\n      tool: {connector: notes, name: list_notes}\n"
            "      with: {last: '${steps.add.output}'}\n",
            '.cloned/pipeline.yaml:12:14: spec.steps[0].with.last: ${steps.add.output}: step "add" '
            "runs later (spec.steps[1]): a step reads only the steps before it",
        ),
        (
            "${steps.notes.output}",
            "${env.HOME}",
            ".cloned/pipeline.yaml:16:9: spec.steps[1].with.body: ${env.HOME}: starts at 'env': "
            "an expression starts at inputs or steps",
        ),
        (
            "${steps.notes.output}",
            "${__import__('os').system('id')}",
            ".cloned/pipeline.yaml:16:9: spec.steps[1].with.body: "
            "${__import__('os').system('id')}: "
            "no function __import__() (the functions: abs, avg, ceil, contains, ends_with, floor, "
            "join, keys, length, map, max, max_by, merge, min, min_by, not_null, reverse, sort, "
            "sort_by, starts_with, sum, to_array, to_number, to_string, type, values)",
        ),
        (
            "length(steps.notes.output)",
            "steps.report.output",
            ".cloned/pipeline.yaml:18:13: spec.outputs.count.from: ${steps.report.output}: no step "
            'named "report"',
        ),
        (
            "default: 5",
            "default: five",
            ".cloned/pipeline.yaml:8:28: spec.inputs.limit.default: must be an integer, not a "
            "string",
        ),
    ],
    ids=["unknown-input", "itself", "later-step", "unknown-root", "code", "output", "default"],
)
def test_validate_names_the_template_that_is_wrong(
    triage: Path, old: str, new: str, error: str
) -> None:
    edit(triage, ".cloned/pipeline.yaml", old, new)
    assert_refused(triage, "validate", error)


def test_a_run_gives_inputs_of_the_declared_types(triage: Path) -> None:
    edit(triage, ".cloned/run.yaml", "inputs: {topic: MCP}", "inputs: {topic: 3, limit: 2.5}")
    assert_refused(
        triage,
        "validate",
        ".cloned/run.yaml:7:12: spec.inputs.topic: must be a string, not an integer",
        ".cloned/run.yaml:7:22: spec.inputs.limit: must be an integer, not a number",
    )


def test_plan_refuses_a_tool_the_connector_does_not_have(triage: Path) -> None:
    edit(triage, ".cloned/pipeline.yaml", "name: add_note}", "name: add_notes}")
    assert cloned("validate", cwd=triage).code == 0  # only the planned package knows its tools
    assert_refused(
        triage,
        "plan",
        ".cloned/pipeline.yaml:13:32: pipeline.triage: steps[1].tool.name: connector notes has "
        "no tool 'add_notes' (its tools: add_note, list_notes, read_note)",
    )


def test_disabling_a_connector_a_pipeline_uses_still_plans(triage: Path) -> None:
    """Disabling is the emergency stop: it always plans; a run reaching the step fails."""
    edit(
        triage, ".cloned/notes.yaml", "publisher: cloned\n", "publisher: cloned\n  enabled: false\n"
    )
    result = cloned("plan", cwd=triage)
    assert result.code == 0, result.err


def test_pipelines_are_planned_and_applied_as_records(triage: Path) -> None:
    commit_all(triage, "triage")
    result = cloned("plan", "--json", cwd=triage)
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    changes = {change["address"]: change for change in plan["changes"]}
    assert changes["pipeline.triage"]["action"] == "create"
    assert changes["pipeline.triage"]["risk"] == "low"
    assert plan["unmanaged"] == []  # Pipelines and Runs are managed
    applied = cloned("apply", "--json", cwd=triage)
    # Applied; its Run executed and failed at the call (title and body are not add_note's
    # arguments: the governed path checks them against the pinned schema).
    assert applied.code == 1, applied.out
    assert {o["status"] for o in json.loads(applied.out)["outcomes"]} == {"applied"}
    (run,) = json.loads(applied.out)["runs"]
    assert run["status"] == "failed" and "pinned input schema" in run["reason"]
    assert json.loads(cloned("plan", "--json", cwd=triage).out)["changes"] == []

    edit(triage, ".cloned/pipeline.yaml", "Notes on ${inputs.topic}", "About ${inputs.topic}")
    commit_all(triage, "retitle")
    plan = json.loads(cloned("plan", "--json", cwd=triage).out)
    change, run_change = plan["changes"]
    assert (change["address"], change["action"], change["risk"]) == (
        "pipeline.triage",
        "update",
        "medium",
    )
    assert [field["path"] for field in change["diff"]] == ["spec.steps"]
    # The Run executes a changed pipeline: a new execution, which the plan shows.
    assert run_change["address"] == "run.weekly"
    assert {field["path"] for field in run_change["diff"]} == {
        "execution.id",
        "execution.pipeline_digest",
    }


def test_the_quickstart_validates_and_plans_its_pipeline(repo: Path) -> None:
    copy_quickstart(repo)
    assert cloned("validate", cwd=repo).code == 0
    result = cloned("plan", "--json", cwd=repo)
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert "pipeline.research-report" in {change["address"] for change in plan["changes"]}
    assert plan["unmanaged"] == []
