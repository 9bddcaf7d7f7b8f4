"""At plan time: every `tool` step of a Pipeline calls a tool its connector can serve.

The loader has already checked that each step names a declared Connector and that its
templates read what exists (reconciler/load/pipelines.py). What only the plan knows is the
package each Connector pins: a step's tool must be one that package declares
(`package.declared.tools`) or that its pinned listing holds (`tools.names`). Whether the
connector is enabled and its `spec.tools.allow`/`deny` are not checked here: disabling a
connector or denying a tool is a tightening that must always plan (the emergency stop), and the
governed call path refuses the call, so a run reaching that step fails naming the rule. A connector
whose tools are not known before its first install (a PyPI package that declares none) is
checked when the run calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine.secrets import problem_at
from reconciler.errors import ValidationFailed
from reconciler.load.resources import DesiredState, LoadedResource
from reconciler.model import names


def check_pipeline_tools(desired: DesiredState, states: Mapping[str, dict[str, Any]]) -> None:
    """`ValidationFailed` naming (file:line:col) each tool step its connector cannot serve."""
    problems = [
        problem_at(desired, pipeline, ("spec", "steps", index, "tool", "name"), message)
        for pipeline in desired.resources
        if pipeline.kind == "Pipeline"
        for index, message in _step_problems(pipeline, states)
    ]
    if problems:
        raise ValidationFailed(problems)


def _step_problems(
    pipeline: LoadedResource, states: Mapping[str, dict[str, Any]]
) -> list[tuple[int, str]]:
    found = []
    for index, step in enumerate(pipeline.spec.get("steps") or []):
        tool = step.get("tool") if isinstance(step, dict) else None
        if not isinstance(tool, dict):
            continue
        state = states.get(names.address("Connector", str(tool.get("connector"))))
        problem = _tool_problem(str(tool.get("connector")), str(tool.get("name")), state)
        if problem:
            found.append((index, f"pipeline.{pipeline.name}: steps[{index}].tool.name: {problem}"))
    return found


def _tool_problem(connector: str, tool: str, state: dict[str, Any] | None) -> str:
    """Why `connector` cannot serve `tool` in its planned `state` ("" when it can)."""
    if state is None:
        return f"connector {connector} is not in the desired state"
    known = _known_tools(state)
    if known is not None and tool not in known:
        listed = ", ".join(known) or "none"
        return f"connector {connector} has no tool {tool!r} (its tools: {listed})"
    return ""


def _known_tools(state: dict[str, Any]) -> list[str] | None:
    """The tools a planned Connector can serve, in the order its package declares them then
    pinned; None when neither is known yet."""
    package = state.get("package") or {}
    declared = (package.get("declared") or {}).get("tools")
    pinned = (state.get("tools") or {}).get("names")
    if declared is None and pinned is None:
        return None
    tools = [str(name) for name in declared or []]
    return tools + [str(name) for name in pinned or [] if str(name) not in tools]
