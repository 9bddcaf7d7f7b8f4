"""Pipeline expressions (reconciler.pipelines.expressions): `${...}` templates in JMESPath,
what they resolve to, what they read, and each kind of error they raise."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reconciler.pipelines import expressions
from reconciler.pipelines.expressions import ExpressionError, references, resolve

CONTEXT: dict[str, Any] = {
    "inputs": {"topic": "MCP", "count": 3, "empty": None, "tags": ["a", "b"]},
    "steps": {
        "issues": {"output": {"items": [{"title": "First", "score": 5}, {"title": "Second"}]}},
        "notes": {"output": ["n1", "n2", "n3"]},
    },
}


def fails(value: Any, kind: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        resolve(value, CONTEXT)
    assert caught.value.kind == kind, caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${inputs.topic}", "MCP"),
        ("${inputs.count}", 3),  # one whole template keeps the value's type
        ("${inputs.tags}", ["a", "b"]),
        ("${steps.issues.output.items[0].title}", "First"),
        ("${length(steps.notes.output)}", 3),
        ("${steps.issues.output.items[*].title}", ["First", "Second"]),
        ("${steps.issues.output.items[?score > `4`].title | [0]}", "First"),
        ("${inputs.zone || 'UTC'}", "UTC"),
        ('${ {t: inputs.topic, n: `{"k": 1}`} }', {"t": "MCP", "n": {"k": 1}}),
        ("${join(', ', steps.notes.output)}", "n1, n2, n3"),
        ("${'}'}", "}"),
    ],
)
def test_a_whole_template_is_its_value(template: str, value: Any) -> None:
    assert resolve(template, CONTEXT) == value


def test_templates_in_text_are_written_into_it() -> None:
    text = "About ${inputs.topic}: ${inputs.count} notes ${inputs.tags}, first "
    text += "${steps.notes.output[0]}"
    assert resolve(text, CONTEXT) == 'About MCP: 3 notes ["a","b"], first n1'


def test_values_are_resolved_inside_objects_and_lists_but_keys_stay() -> None:
    value = {"${inputs.topic}": ["${inputs.count}", {"q": "t=${inputs.topic}"}, 7, None, True]}
    assert resolve(value, CONTEXT) == {"${inputs.topic}": [3, {"q": "t=MCP"}, 7, None, True]}


def test_a_doubled_dollar_writes_a_literal_template() -> None:
    assert resolve("cost: $5, $${inputs.topic} is ${inputs.topic}", CONTEXT) == (
        "cost: $5, ${inputs.topic} is MCP"
    )
    assert references("$${steps.x.output}") == set()


def test_references_name_the_input_or_step_each_template_reads() -> None:
    value = {
        "a": "${steps.issues.output.items[0].title} and ${length(steps.notes.output)}",
        "b": ["${inputs.topic || inputs.count}", "${steps.issues.output[?x == other.y]}"],
        "c": "${inputs}",
        "d": "no template",
    }
    assert references(value) == {
        ("steps", "issues"),
        ("steps", "notes"),
        ("inputs", "topic"),
        ("inputs", "count"),
        ("inputs",),
    }  # `other.y` inside the filter reads each item, not the context


@pytest.mark.parametrize(
    "template",
    [
        "${__import__('os')}",  # no Python: only JMESPath's own functions exist
        "${inputs.topic.__class__}",  # a field name like any other: parses, reads nothing
        "${length(}",
        "${}",
        "${inputs.topic",
        "${inputs.topic == 'x}",
        "${length(inputs.tags, inputs.tags)}",
        "${eval(inputs.topic)}",
    ],
)
def test_what_is_not_jmespath_is_a_syntax_error_or_reads_only_data(template: str) -> None:
    if template == "${inputs.topic.__class__}":
        error = fails(template, "missing")  # a string has no fields: nothing runs
        assert "inputs.topic is a string" in error.message
        return
    error = fails(template, "syntax")
    assert error.message.startswith("$")


def test_an_unknown_function_lists_the_ones_there_are() -> None:
    error = fails("${__import__('os')}", "syntax")
    assert error.expression == "__import__('os')"
    assert "no function __import__()" in error.message
    assert "length" in error.message


@pytest.mark.parametrize("template", ["${topic}", "${env.HOME}", "${@}", "${@.inputs}"])
def test_an_expression_starts_at_inputs_or_steps(template: str) -> None:
    error = fails(template, "unknown")
    assert "an expression starts at inputs or steps" in error.message


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("${inputs.topc}", "inputs has no 'topc' (it has: count, empty, tags, topic)"),
        ("${inputs.empty}", "inputs.empty is null"),
        ("${steps.nope.output}", "steps has no 'nope' (it has: issues, notes)"),
        ("${steps.issues.output.items[5]}", "the value is null"),
        ("${length(inputs.nope)}", "length() was given null"),
    ],
)
def test_a_path_that_reaches_nothing_is_missing(template: str, said: str) -> None:
    assert said in fails(template, "missing").message


def test_a_function_given_the_wrong_type_is_a_type_error() -> None:
    error = fails("${length(inputs.count)}", "type")
    assert error.message == (
        "${length(inputs.count)}: length() was given number, it takes string, array, object"
    )


def test_the_text_of_a_template_is_bounded() -> None:
    long = "inputs.topic" + " || inputs.topic" * 100
    assert "at most 1000 characters" in fails("${" + long + "}", "syntax").message
    assert "at most" in fails("x" * expressions.MAX_TEXT + "${inputs.topic}", "syntax").message


@pytest.mark.parametrize(
    "tail",
    [
        " | [@,@][]" * 40,  # doubles a list 40 times
        " | [@,@]" * 40,  # shares one value 2**40 times over
        " | [@,@]" * 40 + " | to_string(@)",
        " | [@,@]" * 40 + " | [0] == [1]",
    ],
    ids=["flatten", "shared", "to-string", "compare"],
)
def test_a_template_cannot_build_a_huge_value(tail: str) -> None:
    started = time.monotonic()
    error = fails("${steps.notes.output" + tail + "}", "type")
    assert "over" in error.message or "more than" in error.message
    assert time.monotonic() - started < 5


def test_text_built_from_templates_is_bounded() -> None:
    big = {"inputs": {"s": "x" * (expressions.MAX_RESULT // 2 + 10)}, "steps": {}}
    with pytest.raises(ExpressionError, match="the text built is over"):
        resolve("${inputs.s}${inputs.s}", big)


def test_outputs_from_may_be_bare_or_one_template() -> None:
    bare = expressions.parse_source("steps.issues.output.items[0]")
    wrapped = expressions.parse_source("${steps.issues.output.items[0]}")
    assert bare.reads == wrapped.reads == (("steps", "issues", "output", "items"),)
    assert expressions.evaluate(bare, CONTEXT) == {"title": "First", "score": 5}
