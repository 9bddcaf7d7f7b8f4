"""Model steps in runs, against the local OpenAI-compatible server (tests/fakes/openai_server.py)
through Cloned's own client: the answer is the step's output (redacted before it is journaled,
read by later steps or published), its real usage is charged to the pipeline's token budget,
and a token budget stops the run at the first model call that could pass its limit, before
that call is sent (specs/runs.md, "Budgets")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import commit_all, write
from tests.fakes.openai_server import FakeOpenAI
from tests.func.engine_helpers import Team, make_team

SECRET = "sk-live-Q7ZK2M9XW4PA8RJD"
PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: team}
spec:
  extends: baseline
  redaction:
    - {name: live-keys, regex: "sk-live-[A-Za-z0-9]{16}"}
"""


def files(base_url: str, tokens: int) -> dict[str, str]:
    step = (
        "    - name: draft{n}\n"
        '      model: {{name: local, prompt: "Draft {n} on ${{inputs.topic}}", maxTokens: 1000}}\n'
    )
    return {
        ".cloned/team.yaml": PACK,
        ".cloned/model.yaml": (
            "apiVersion: cloned/v1\nkind: Model\nmetadata: {name: local}\nspec:\n"
            f"  api: openai-chat\n  baseUrl: {base_url}\n  model: qwen2.5-7b-instruct\n"
            "  price: {inputPerMTok: 1, outputPerMTok: 2}\n"
        ),
        ".cloned/budget.yaml": (
            "apiVersion: cloned/v1\nkind: Budget\nmetadata: {name: drafts}\nspec:\n"
            f"  scope: {{pipeline: drafts}}\n  period: day\n  limits: {{tokens: {tokens}}}\n"
            "  onExceed: block\n"
        ),
        ".cloned/pipeline.yaml": (
            "apiVersion: cloned/v1\nkind: Pipeline\nmetadata: {name: drafts}\nspec:\n"
            "  inputs:\n    topic: {type: string, required: true}\n  steps:\n"
            + "".join(step.format(n=n) for n in (1, 2, 3))
            + "  outputs:\n    text: {from: steps.draft3.output}\n"
            "---\napiVersion: cloned/v1\nkind: Run\nmetadata: {name: drafting}\n"
            "spec: {pipeline: drafts, inputs: {topic: MCP}}\n"
        ),
    }


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.start(api_key=None) as server:
        yield server


def team_with(repo: Path, tmp_path: Path, fake: FakeOpenAI, tokens: int) -> Team:
    team = make_team(repo, tmp_path, packs="[team]")
    for rel, text in files(fake.base_url, tokens).items():
        write(repo, rel, text)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "a pipeline of model steps")
    return team


def run_json(team: Team) -> dict[str, object]:
    shown = team.run("runs", "show", "drafting", "--json")
    assert shown.code == 0, shown.err
    return json.loads(shown.out)  # type: ignore[no-any-return]


def test_answers_are_outputs_redacted_and_their_usage_is_charged(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    fake.reply("first draft", usage=(12, 30))
    fake.reply("second draft", usage=(12, 30))
    fake.reply(f"final: the key is {SECRET}", usage=(12, 30))
    team = team_with(repo, tmp_path, fake, tokens=100_000)
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    detail = run_json(team)
    assert detail["status"] == "succeeded"
    usage = [step["usage"] for step in detail["steps"]]  # type: ignore[union-attr, index]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(12, 30)] * 3
    assert usage[0]["cost_usd"] == pytest.approx((12 * 1 + 30 * 2) / 1e6)
    sent = fake.completions()
    assert [s.max_tokens for s in sent] == [1000, 1000, 1000]
    assert sent[0].messages[-1]["content"] == "Draft 1 on MCP"
    assert len(detail["artifacts"]) == 1  # type: ignore[arg-type]
    shown = team.run("artifacts", "show", "text", "--run", str(detail["id"]))
    assert shown.out.strip() == "final: the key is [REDACTED]"
    status = json.loads(team.run("budgets", "status", "--json").out)
    (drafts,) = [b for b in status["budgets"] if b["name"] == "drafts"]
    assert drafts["limits"]["tokens"]["used"] == 3 * 42  # the real usage, not the reservations
    db = (repo / ".cloned" / "state" / "cloned.db").read_bytes()
    assert SECRET.encode() not in db


def test_a_token_budget_stops_the_run_before_the_call_that_could_pass_it(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    # Each call may use its prompt (a few tokens) plus maxTokens 1000, and really uses 700: the
    # first fits 1,500 tokens; the second could reach 700 + 1,004 > 1,500, so it is not sent.
    for _ in range(3):
        fake.reply("a draft", usage=(200, 500))
    team = team_with(repo, tmp_path, fake, tokens=1500)
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    detail = run_json(team)
    assert detail["status"] == "failed"
    assert [s["status"] for s in detail["steps"]] == ["done", "failed", "pending"]  # type: ignore[union-attr, index]
    assert "budget drafts" in str(detail["reason"]) and "700 of 1500 tokens used" in str(
        detail["reason"]
    )
    assert len(fake.completions()) == 1  # the call that could pass the limit was never sent


def test_a_require_approval_budget_pauses_the_step_until_an_admin_approves_the_excess(
    repo: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    for _ in range(3):
        fake.reply("a draft", usage=(200, 500))
    team = team_with(repo, tmp_path, fake, tokens=1500)
    team.edit(".cloned/budget.yaml", "onExceed: block", "onExceed: requireApproval")
    commit_all(repo, "drafts may exceed with an approval")
    waiting = team.run("apply")
    assert waiting.code == 3, waiting.out + waiting.err
    assert run_json(team)["status"] == "waiting"
    assert len(fake.completions()) == 1  # the call over the limit waits, unsent
    (request,) = [r for r in team.requests() if r["status"] == "pending"]
    assert request["address"] == "run.drafting"
    approved = team.run("approvals", "approve", str(request["id"]), "--key", "alice", who="alice")
    assert approved.code == 0, approved.err
    resumed = team.run("runs", "resume", "drafting")
    # The approved excess is made and counted; the third call is over the limit again, and
    # waits for its own approval.
    assert resumed.code == 3, resumed.out + resumed.err
    assert len(fake.completions()) == 2
    steps = run_json(team)["steps"]
    assert [s["status"] for s in steps] == ["done", "done", "waiting"]  # type: ignore[union-attr, index]
