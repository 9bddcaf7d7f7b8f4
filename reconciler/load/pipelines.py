"""Checks inside a Pipeline, and of a Run against its Pipeline, at load (`cloned validate`).

Every template in a step (its `with`, a model step's `prompt` and `system`) and every
`outputs.*.from` parses, and reads only declared inputs and steps written *before* the step
(outputs may read any step). A Run gives each required input, no unknown one, each of the
declared type. What needs the planned state (a step's tool among its connector's) is checked
at plan time (reconciler/providers/pipeline.py). Findings are (path in the document,
message); refs.py locates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler.load.messages import did_you_mean, dotted
from reconciler.load.yamlio import Path
from reconciler.pipelines.expressions import (
    STEP_FIELDS,
    Expression,
    ExpressionError,
    parse_source,
    parse_text,
    strings,
)

Finding = tuple[Path, str]

TEMPLATED: tuple[tuple[str, ...], ...] = (("with",), ("model", "prompt"), ("model", "system"))
"""The parts of a step that hold templates (a whole subtree each): the runner resolves these
and nothing else (`runs.runner.resolved_arguments`)."""

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def pipeline_findings(spec: dict[str, Any]) -> list[Finding]:
    """Every problem of the templates, outputs and input defaults in a Pipeline's spec."""
    inputs = list(spec.get("inputs") or {})
    steps = [step.get("name") for step in spec.get("steps") or [] if isinstance(step, dict)]
    findings = list(_defaults(spec))
    for index, step in enumerate(spec.get("steps") or []):
        scope = _Scope(inputs, steps, index)
        for at, text in _templated(step):
            findings += _check_text(("spec", "steps", index, *at), text, scope)
    everything = _Scope(inputs, steps, len(steps))
    for name, output in (spec.get("outputs") or {}).items():
        source = output.get("from") if isinstance(output, dict) else None
        if isinstance(source, str):
            where: Path = ("spec", "outputs", name, "from")
            findings += _check_expressions(where, _source(source), everything)
    return findings


def run_type_findings(given: dict[str, Any], declared: dict[str, Any]) -> list[Finding]:
    """Each of a Run's inputs that is not of the type its Pipeline declares."""
    findings: list[Finding] = []
    for name, value in given.items():
        spec = declared.get(name)
        if isinstance(spec, dict):
            problem = type_problem(value, str(spec.get("type") or "string"))
            if problem:
                findings.append((("spec", "inputs", name), f"spec.inputs.{name}: {problem}"))
    return findings


def type_problem(value: Any, wanted: str) -> str:
    """Why `value` is not of the input type `wanted` ("" when it is)."""
    types = JSON_TYPES.get(wanted, ())
    ok = isinstance(value, types) and not (isinstance(value, bool) and wanted != "boolean")
    if ok or (wanted == "integer" and isinstance(value, float) and value.is_integer()):
        return ""
    return f"must be {'an' if wanted[0] in 'aeiou' else 'a'} {wanted}, not {_json_type(value)}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {int: "an integer", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), "an object" if isinstance(value, dict) else "null")


def _defaults(spec: dict[str, Any]) -> Iterator[Finding]:
    for name, item in (spec.get("inputs") or {}).items():
        if isinstance(item, dict) and item.get("default") is not None:
            problem = type_problem(item["default"], str(item.get("type") or "string"))
            if problem:
                yield ("spec", "inputs", name, "default"), f"spec.inputs.{name}.default: {problem}"


def _templated(step: Any) -> Iterator[tuple[Path, str]]:
    if not isinstance(step, dict):
        return
    for keys in TEMPLATED:
        node: Any = step
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            for at, text in strings(node):
                yield (*keys, *at), text


class _Scope:
    """What a template at step `index` may read: the inputs, and the steps before it."""

    def __init__(self, inputs: list[str], steps: list[Any], index: int) -> None:
        self.inputs = inputs
        self.steps = steps
        self.index = index

    def problem(self, read: tuple[str, ...]) -> str:
        """Why reading `read` is not allowed here ("" when it is)."""
        if read[0] == "inputs":
            if len(read) > 1 and read[1] not in self.inputs:
                return f'the pipeline has no input "{read[1]}"' + did_you_mean(read[1], self.inputs)
            return ""
        if len(read) == 1:
            return "name the step it reads: steps.NAME.output"
        name = read[1]
        if name not in self.steps:
            return f'no step named "{name}"' + did_you_mean(name, [str(s) for s in self.steps])
        position = self.steps.index(name)
        if position == self.index:
            return f'step "{name}" is this step: a step reads only the steps before it'
        if position > self.index:
            return (
                f'step "{name}" runs later ({dotted(("spec", "steps", position))}): '
                "a step reads only the steps before it"
            )
        if len(read) > 2 and read[2] not in STEP_FIELDS:
            fields = ", ".join(f'"{field}"' for field in STEP_FIELDS)
            return f'a step has only {fields}, not "{read[2]}" (steps.{name}.output...)'
        return ""


def _source(text: str) -> list[Expression] | ExpressionError:
    try:
        return [parse_source(text)]
    except ExpressionError as error:
        return error


def _check_text(at: Path, text: str, scope: _Scope) -> list[Finding]:
    try:
        parts = parse_text(text)
    except ExpressionError as error:
        return [(at, f"{dotted(at)}: {error.message}")]
    return _check_expressions(at, [p for p in parts if isinstance(p, Expression)], scope)


def _check_expressions(
    at: Path, parsed: list[Expression] | ExpressionError, scope: _Scope
) -> list[Finding]:
    if isinstance(parsed, ExpressionError):
        return [(at, f"{dotted(at)}: {parsed.message}")]
    findings = []
    for expression in parsed:
        for read in expression.reads:
            problem = scope.problem(read)
            if problem:
                findings.append((at, f"{dotted(at)}: ${{{expression.text}}}: {problem}"))
                break
    return findings
