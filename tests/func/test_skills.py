"""Skill steps end to end: a real workspace (the builtin notes connector, a Model on the local
OpenAI-compatible server of tests/fakes/openai_server.py), applied with the real CLI, so each
run goes through the runner, the governed call path and the budgets (specs/skills.md).

A skill that makes one tool call then answers; a call of a tool the skill may not use is
refused, audited and never made; maxTurns exceeded fails; an answer off the output schema (or
whose citations do not agree with its summary) fails naming where; token use is charged to the
budgets in scope, and a budget without room for the skill's cap stops it before any request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import commit_all, write
from tests.fakes.openai_server import Call, FakeOpenAI
from tests.func.engine_helpers import Team, make_team

NOTES = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: notes}
spec:
  source: {builtin: notes}
  version: 0.1.0
  publisher: cloned
"""
FROM_NOTES = """\
    - name: digest
      skill: research.notes
      with: {topic: "${inputs.topic}"}
"""
FROM_SOURCES = """\
    - name: digest
      skill: research.summarize
      with:
        topic: "${inputs.topic}"
        sources: ["MCP servers expose tools.", {title: Pins, text: "Pins fix a tool's schema."}]
"""
ANSWER = {"summary": "Servers expose tools [1].", "citations": [{"n": 1, "source": "mcp"}]}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.start(api_key=None) as server:
        yield server


def skills_team(
    repo: Path, tmp_path: Path, fake: FakeOpenAI, steps: str, *, budget: str = ""
) -> Team:
    team = make_team(repo, tmp_path)
    model = (
        "apiVersion: cloned/v1\nkind: Model\nmetadata: {name: default}\n"
        f"spec: {{api: openai-chat, baseUrl: '{fake.base_url}', model: qwen2.5-7b,"
        " price: {inputPerMTok: 1, outputPerMTok: 2}}\n"
    )
    pipeline = (
        "apiVersion: cloned/v1\nkind: Pipeline\nmetadata: {name: report}\nspec:\n"
        "  inputs:\n    topic: {type: string, required: true}\n"
        f"  steps:\n{steps}"
        "---\napiVersion: cloned/v1\nkind: Run\nmetadata: {name: weekly}\n"
        "spec:\n  pipeline: report\n  inputs: {topic: MCP}\n"
    )
    write(repo, ".cloned/notes.yaml", NOTES)
    write(repo, ".cloned/model.yaml", model)
    write(repo, ".cloned/report.yaml", pipeline)
    if budget:
        write(repo, ".cloned/skill-budget.yaml", budget)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "a skill pipeline")
    return team


def shown(team: Team) -> dict[str, Any]:
    result = team.run("runs", "show", "weekly", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


def notes_folder(team: Team) -> Path:
    return team.repo / ".cloned/state/connectors/notes/data"


def audit(team: Team, kind: str) -> list[dict[str, Any]]:
    result = team.run("audit", "log", "--json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    return [event for event in events if event.get("type") == kind]


def test_a_skill_calls_a_tool_through_the_governed_path_then_answers(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_NOTES)
    fake.reply(tool_calls=[Call("notes__list_notes", "{}", id="call_1")], usage=(300, 20))
    fake.reply(json.dumps(ANSWER), usage=(400, 60))
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    detail = shown(team)
    assert detail["status"] == "succeeded"
    (step,) = detail["steps"]
    usage = step["usage"]
    assert (usage["model"], usage["turns"], usage["tool_calls"]) == ("default", 2, 1)
    assert usage["tools_called"] == ["notes__list_notes"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (700, 80)
    assert usage["cost_usd"] == pytest.approx(700 * 1e-6 + 80 * 2e-6)

    asked, answered = fake.completions()
    offered = sorted(tool["function"]["name"] for tool in asked.tools)
    assert offered == ["notes__list_notes", "notes__read_note"]  # not add_note
    assert asked.response_format["json_schema"]["schema"]["required"] == ["summary", "citations"]
    assert "Topic: MCP" in asked.messages[-1]["content"]
    tool_message = answered.messages[-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert tool_message["content"] == "(no notes)"  # the real connector's answer
    (call,) = [e for e in audit(team, "tool.called") if e["payload"]["tool"] == "list_notes"]
    assert call["payload"]["decision"] == "allowed"
    (artifact,) = detail["artifacts"]
    content = team.run("artifacts", "show", artifact["name"], "--run", detail["id"])
    assert "Servers expose tools [1]." in content.out


def test_a_tool_the_skill_may_not_call_is_refused_audited_and_never_made(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_NOTES)
    write_note = Call("notes__add_note", '{"name": "x", "text": "pwned"}', id="call_w")
    fake.reply(tool_calls=[write_note], usage=(300, 20))
    fake.reply(json.dumps(ANSWER), usage=(400, 60))
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    assert not list(notes_folder(team).glob("*.txt"))  # the note was never written
    assert not [e for e in audit(team, "tool.called") if e["payload"]["tool"] == "add_note"]
    (refused,) = audit(team, "skill.tool_refused")
    assert refused["payload"]["tool"] == "notes__add_note"
    assert refused["payload"]["step"] == "digest" and refused["subject"] == "run.weekly"
    answer = fake.completions()[1].messages[-1]
    assert answer["role"] == "tool" and answer["content"].startswith(
        "error: notes__add_note is not a tool this skill may call"
    )
    assert shown(team)["steps"][0]["usage"]["tool_calls"] == 0


def test_a_skill_past_its_max_turns_fails(repo: Path, tmp_path: Path, fake: FakeOpenAI) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_SOURCES)  # summarize: maxTurns 1
    fake.reply(tool_calls=[Call("notes__list_notes", "{}")], usage=(300, 20))
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    reason = str(shown(team)["reason"])
    assert "step digest: skill research.summarize" in reason
    assert "still asked for tool calls after its maxTurns (1) turns" in reason
    assert len(fake.completions()) == 1
    assert not audit(team, "tool.called")  # no tool was called


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"summary": "Tools [1]."}, "structured output at $ does not match the schema (required)"),
        (
            {"summary": "Tools [1][2].", "citations": [{"n": 1, "source": "mcp"}]},
            "uses [2] in its summary without a citation for it",
        ),
    ],
)
def test_an_answer_off_the_output_schema_or_its_checks_fails(
    repo: Path, tmp_path: Path, fake: FakeOpenAI, answer: dict[str, Any], named: str
) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_SOURCES)
    fake.reply(json.dumps(answer), usage=(300, 20))
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    detail = shown(team)
    assert detail["status"] == "failed" and named in str(detail["reason"])
    (seen,) = fake.completions()
    user = seen.messages[-1]["content"]
    assert '"Pins fix a tool\'s schema."' in user and "Topic: MCP" in user
    assert seen.tools is None  # summarize may call no tool


TOKENS = """\
apiVersion: cloned/v1
kind: Budget
metadata: {name: tokens}
spec:
  scope: {pipeline: report}
  period: month
  limits: {tokens: LIMIT}
  onExceed: block
"""


def test_token_use_is_charged_to_the_budgets_in_scope(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_SOURCES, budget=TOKENS.replace("LIMIT", "90000"))
    fake.reply(json.dumps(ANSWER), usage=(1234, 56))
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    status = team.run("budgets", "status", "--json")
    assert status.code == 0, status.err
    (tokens,) = [b for b in json.loads(status.out)["budgets"] if b["name"] == "tokens"]
    assert tokens["limits"]["tokens"]["used"] == 1234 + 56  # the real use, not the reservation


def test_a_budget_without_room_for_the_skills_cap_stops_it_before_any_request(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    team = skills_team(repo, tmp_path, fake, FROM_SOURCES, budget=TOKENS.replace("LIMIT", "1000"))
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    reason = str(shown(team)["reason"])
    assert "budget tokens" in reason and "0 of 1000 tokens used" in reason
    assert fake.completions() == []
