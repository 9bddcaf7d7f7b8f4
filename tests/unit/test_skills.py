"""Skill packs: the shipped JSON is what the YAML generates, packs are checked beyond their
schema, and a Pipeline's skill steps are checked at load (reconciler.skills, load.skills)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.load.skills import render_json, skill_problems, source_names
from reconciler.runs.skillstep import citation_problem, schema_mismatch
from reconciler.skills.catalog import PACKS_DIR, UnknownSkill, find, pack_data, pack_names, problems


def test_the_shipped_json_is_generated_from_the_yaml() -> None:
    assert source_names() == list(pack_names()) == ["research"]
    for name in pack_names():
        committed = (PACKS_DIR / f"{name}.json").read_text()
        assert committed == render_json(name), "run `make schemas`: the pack's JSON is stale"


def test_the_research_pack_and_its_defaults() -> None:
    summarize = find("research.summarize", checked=True)
    assert (summarize.version, summarize.model, summarize.tools) == ("1.0.0", "default", ())
    assert summarize.inputs["required"] == ["topic", "sources"]
    notes = find("research.notes")
    assert notes.tools == ("notes__list_notes", "notes__read_note")
    assert (notes.max_turns, notes.defaults()) == (6, {"names": []})
    with pytest.raises(UnknownSkill, match=r'did you mean "research\.summarize"'):
        find("research.summarise")


def broken(change: Any) -> list[str]:
    data = copy.deepcopy(dict(pack_data("research")))
    change(data["skills"]["summarize"])
    return problems(data)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s.update(prompt="${steps.x.output}"), "read `inputs.NAME` only"),
        (lambda s: s.update(prompt="${inputs.nope}"), "not a required input nor one with a"),
        (lambda s: s.update(maxTurns=17), "maxTurns: 17 is greater than the maximum of 16"),
        (lambda s: s["inputs"]["properties"].update(model={}), "`with.model` names the Model"),
        (lambda s: s.update(tools=["notes.read_note"]), "tools[0]"),
        (lambda s: s["output"].update(required=3), "output: not a valid JSON Schema"),
        (lambda s: s.pop("budget"), "'budget' is a required property"),
    ],
)
def test_a_pack_is_checked_beyond_its_schema(change: Any, named: str) -> None:
    found = broken(change)
    assert found and named in "; ".join(found)


def test_an_escaped_template_is_text() -> None:
    assert broken(lambda s: s.update(prompt="Write $${inputs.x} literally: ${inputs.topic}")) == []


def step(**fields: Any) -> dict[str, Any]:
    return {"steps": [{"name": "a", "tool": {"connector": "c", "name": "t"}}, fields]}


def test_skill_steps_are_checked_at_load() -> None:
    good = {"topic": "${inputs.topic}", "sources": ["a"]}
    assert skill_problems(
        step(
            name="s",
            skill="research.summarize",
        ),
        {"default"},
    )
    assert (
        skill_problems(step(name="s", skill="research.summarize", **{"with": good}), {"default"})
        == []
    )
    [(at, unknown)] = skill_problems(step(name="s", skill="research.sumarize"), {"default"})
    assert at == ("spec", "steps", 1, "skill")
    assert unknown == (
        'spec.steps[1].skill: no shipped skill "research.sumarize" '
        '(did you mean "research.summarize"?)'
    )
    [(_, model)] = skill_problems(
        step(name="s", skill="research.summarize", **{"with": good}), {"local"}
    )
    assert 'calls Model "default", which is not declared' in model
    other = {**good, "model": "local"}
    assert (
        skill_problems(step(name="s", skill="research.summarize", **{"with": other}), {"local"})
        == []
    )
    typo = {**good, "topc": "x"}
    [(at, message)] = skill_problems(
        step(name="s", skill="research.summarize", **{"with": typo}), {"default"}
    )
    assert at == ("spec", "steps", 1, "with", "topc") and 'did you mean "topic"' in message
    [(_, missing)] = skill_problems(step(name="s", skill="research.notes"), {"default"})
    assert missing.endswith('research.notes requires input "topic"')


def test_inputs_that_do_not_match_name_the_path_not_the_value() -> None:
    schema = find("research.summarize").inputs
    problem = schema_mismatch(schema, {"topic": "t", "sources": [{"title": "SECRET-VALUE"}]})
    assert problem is not None and "$.sources[0]" in problem and "SECRET-VALUE" not in problem


@pytest.mark.parametrize(
    ("summary", "citations", "problem"),
    [
        ("A [1] and B [2].", [1, 2], None),
        ("A [1].", [1, 2], "lists citation 2, which its summary does not use"),
        ("A [1] [3].", [1], "uses [3] in its summary without a citation for it"),
        ("A [1].", [1, 1], "cites a number twice in citations"),
    ],
)
def test_citations_agree_with_the_summary(
    summary: str, citations: list[int], problem: str | None
) -> None:
    value = {"summary": summary, "citations": [{"n": n, "source": "s"} for n in citations]}
    assert citation_problem(value) == problem
