"""A `skill` step: a shipped skill (`PACK.SKILL`, reconciler.skills) executed as a bounded chat
with one applied Model, whose tool calls each go through the governed path (specs/skills.md).

1. the step's `with` (resolved by the runner) less `with.model` (another Model than the
   skill's), with the inputs' defaults filled in, must fit the skill's `inputs` schema;
2. the prompt and system text are rendered from those inputs (`${inputs.NAME}`);
3. the tools offered are the skill's `tools` that the workspace serves (connector applied,
   enabled, installed, the tool pinned and allowed) and that need no per-call approval (a
   skill's calls cannot wait for one), each with its pinned input schema;
4. the budgets in scope must have room for the skill's whole `budget.tokens` cap (reserved as a
   model step reserves one call, `runs.modelstep`), settled with the real use at the end;
5. at most `maxTurns` completions: each asks for at most `maxTokens`, fewer when the cap has
   less left after the prompt; tool calls the model asks for are made through
   `GovernedCaller.call` (via pipeline), their redacted results fed back as `tool` messages; a
   call of a tool not offered is answered with an error, audited (`skill.tool_refused`) and
   never made;
6. the answer must match the skill's `output` schema (structured output) and its `checks`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.clock import Clock
from reconciler.errors import ClonedError
from reconciler.runs import modelstep
from reconciler.skills.catalog import MODEL_OVERRIDE, Skill, find

if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.governed.applied import AppliedView
    from reconciler.governed.calls import GovernedCaller
    from reconciler.models.client import ChatModel
    from reconciler.models.types import Completion, Message, ToolCall, ToolSpec
    from reconciler.redact import Redactor
    from reconciler.runs.runner import StepResult
    from reconciler.state.db import StateDB
    from reconciler.state.runs import RunRow

MIN_TURN_TOKENS = 16
"""A turn is not asked for when the cap leaves fewer answer tokens than this."""
CITATION = re.compile(r"\[(\d{1,4})\]")


class SkillFailed(ClonedError):
    """The step fails with this message (already prefixed with the step and skill)."""


@dataclass(frozen=True)
class Offered:
    """A tool offered to the model: its public name, connector, tool and spec."""

    public: str
    connector: str
    tool: str
    spec: ToolSpec


@dataclass
class Tally:
    """What one execution used so far."""

    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0
    tools: set[str] = field(default_factory=set)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def usage(self, model: str) -> dict[str, Any]:
        """The step's usage as the journal records it."""
        return {
            "model": model,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "tools_called": sorted(self.tools),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass(frozen=True)
class Context:
    """What one execution works with (the runner's objects)."""

    root: Path
    db: StateDB
    row: RunRow
    step: Mapping[str, Any]
    view: AppliedView
    caller: GovernedCaller
    redactor: Redactor
    clock: Clock
    actor: str

    @property
    def label(self) -> str:
        return f"step {self.step['name']}: skill {self.step['skill']}"


async def skill_step(
    context: Context, arguments: Any, *, over_approved: bool = False
) -> StepResult:
    """One skill step (see the module); `arguments` is its `with`, resolved."""
    from reconciler.runs.runner import StepResult

    try:
        skill = find(str(context.step["skill"]), checked=True)
        given = dict(arguments) if isinstance(arguments, Mapping) else {}
        model_name = given.pop(MODEL_OVERRIDE, skill.model)
        if not isinstance(model_name, str):
            raise SkillFailed(f"{context.label}: with.{MODEL_OVERRIDE} must name a Model")
        inputs = {**skill.defaults(), **given}
        messages = first_messages(context.label, skill, inputs)
        name, spec = modelstep.applied_model_spec(context.db, model_name)
        key = modelstep.api_key(context.root, context.view, spec, context.row.pipeline)
    except ClonedError as exc:
        return StepResult(error=_prefixed(context.label, exc.message))
    from reconciler.models.client import ChatModel

    with ChatModel(name, spec, api_key=key, denies=context.view.policy.registry_denies) as client:
        return await _execute(context, skill, client, messages, over_approved)


async def _execute(
    context: Context,
    skill: Skill,
    client: ChatModel,
    messages: list[Message],
    over_approved: bool,
) -> StepResult:
    from reconciler.runs.runner import StepResult

    offered = offered_tools(skill, context.view)
    out_worst = min(skill.budget_tokens, skill.max_tokens * skill.max_turns)
    worst_cost = _micros(_worst_cost(client, skill.budget_tokens, out_worst))
    budgets = context.view.budgets_for("", context.row.pipeline)
    held = modelstep.reserve(
        context.db, budgets, context.clock, skill.budget_tokens, worst_cost, force=over_approved
    )
    if not isinstance(held, modelstep.Reservation):
        budget, reason = held
        if budget.on_exceed == "requireApproval":
            return StepResult(over_budget=f"{reason} (onExceed requireApproval)")
        return StepResult(error=f"{context.label}: {reason}")
    tally = Tally()
    began = time.monotonic()
    try:
        output = await _turns(context, skill, client, messages, offered, tally)
    except ClonedError as exc:
        return StepResult(error=_prefixed(context.label, exc.message))
    finally:
        modelstep.settle(
            context.db,
            held,
            tally.tokens,
            _micros(tally.cost_usd),
            round((time.monotonic() - began) * 1000),
            calls=max(tally.turns - 1, 0),
        )
    return StepResult(output=output, usage=tally.usage(client.name))


async def _turns(
    context: Context,
    skill: Skill,
    client: ChatModel,
    messages: list[Message],
    offered: Mapping[str, Offered],
    tally: Tally,
) -> Any:
    """The chat, turn by turn, until the model answers; its checked answer."""
    import anyio

    from reconciler.models.types import Message, ModelFailed, Usage

    specs = [item.spec for item in offered.values()]
    timeout = float(context.step.get("timeoutSeconds") or 120)
    while True:
        left = skill.budget_tokens - tally.tokens - prompt_tokens(messages, specs)
        max_tokens = min(skill.max_tokens, left)
        if max_tokens < MIN_TURN_TOKENS:
            raise SkillFailed(
                f"{context.label}: its budget cap of {skill.budget_tokens} tokens is used up "
                f"after {tally.turns} turn(s) ({tally.tokens} tokens)"
            )
        ask = functools.partial(
            client.complete,
            messages,
            max_tokens=max_tokens,
            tools=specs,
            schema=skill.output,
            timeout=timeout,
        )
        try:
            completion: Completion = await anyio.to_thread.run_sync(ask)
        except ModelFailed as exc:
            if exc.kind in modelstep.ANSWERED:  # answered: charged the most this turn could use
                asked = Usage(prompt_tokens(messages, specs), max_tokens)
                tally.turns += 1
                tally.input_tokens += asked.input_tokens
                tally.output_tokens += asked.output_tokens
                tally.cost_usd += client.cost(asked)
            raise SkillFailed(f"{context.label}: model {client.name}: {exc.message}") from None
        tally.turns += 1
        tally.input_tokens += completion.usage.input_tokens
        tally.output_tokens += completion.usage.output_tokens
        tally.cost_usd += client.cost(completion.usage)
        if not completion.tool_calls:
            return checked_answer(context.label, skill, completion.text, messages)
        if tally.turns >= skill.max_turns:
            raise SkillFailed(
                f"{context.label}: the model still asked for tool calls after its maxTurns "
                f"({skill.max_turns}) turns"
            )
        messages.append(Message("assistant", completion.text, tool_calls=completion.tool_calls))
        for call in completion.tool_calls:
            text = await _answer(context, offered, call, tally)
            messages.append(Message("tool", text, tool_call_id=call.id, name=call.name))


async def _answer(
    context: Context, offered: Mapping[str, Offered], call: ToolCall, tally: Tally
) -> str:
    """The text a tool message answers `call` with: the governed call's result, or why it
    was not made."""
    from reconciler.governed.calls import CallRequest
    from reconciler.runs.runner import tool_output

    item = offered.get(call.name)
    if item is None:
        reason = f"{call.name} is not a tool this skill may call"
        _refused(context, call.name, reason)
        return f"error: {reason}; the tools you may call: {', '.join(offered) or 'none'}"
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        return "error: the arguments are not JSON; call it again with a JSON object"
    if not isinstance(arguments, dict):
        return "error: the arguments must be a JSON object"
    request = CallRequest(
        item.connector, item.tool, arguments, via="pipeline", pipeline=context.row.pipeline
    )
    outcome = await context.caller.call(request)
    tally.tool_calls += 1
    tally.tools.add(item.public)
    if outcome.decision == "approval":
        raise SkillFailed(
            f"{context.label}: {item.public} needs a per-call approval (request "
            f"{outcome.request_id}); a skill's calls cannot wait for one: call it from a tool step"
        )
    if outcome.decision != "allowed" or outcome.is_error:
        reason = outcome.reason or _text(outcome.content) or "the tool answered an error"
        return context.redactor.text(f"error: {reason}")
    result = tool_output(outcome.structured, outcome.content)
    text = result if isinstance(result, str) else json.dumps(result, sort_keys=True)
    return context.redactor.text(text)


def _refused(context: Context, tool: str, reason: str) -> None:
    """Audit a tool call the model asked for and the skill may not make."""
    from reconciler.audit.log import append

    row = context.row
    payload = {
        "run": row.name,
        "id": row.id,
        "pipeline": row.pipeline,
        "step": str(context.step["name"]),
        "skill": str(context.step["skill"]),
        "tool": tool,
        "reason": reason,
    }
    with context.db.transaction() as connection:
        append(
            connection,
            actor=context.actor,
            type="skill.tool_refused",
            subject=f"run.{row.name}",
            payload=payload,
            redactor=context.redactor,
        )


# --- inputs, tools, answers ----------------------------------------------------------------------


def first_messages(label: str, skill: Skill, inputs: Mapping[str, Any]) -> list[Message]:
    """The system and user messages, after the inputs are checked against the skill's schema."""
    from reconciler.models.types import Message

    problem = schema_mismatch(skill.inputs, inputs)
    if problem is not None:
        raise SkillFailed(f"{label}: its inputs (with) {problem}")
    messages = [Message("system", _render(label, skill.system, inputs))] if skill.system else []
    messages.append(Message("user", _render(label, skill.prompt, inputs)))
    return messages


def _render(label: str, text: str, inputs: Mapping[str, Any]) -> str:
    """`text` with its `${inputs.NAME}` templates resolved (reconciler.pipelines)."""
    from reconciler.pipelines.expressions import ExpressionError, resolve

    try:
        return str(resolve(text, {"inputs": dict(inputs)}))
    except ExpressionError as exc:
        raise SkillFailed(f"{label}: its prompt: {exc.message}") from None


def schema_mismatch(schema: Mapping[str, Any], value: Any) -> str | None:
    """Where `value` does not match `schema` and which keyword fails (never the value)."""
    import jsonschema
    from jsonschema import validators

    cls = validators.validator_for(dict(schema), default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(cls(dict(schema)).iter_errors(value))
    if error is None:
        return None
    where = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    rule = "/".join(str(part) for part in error.schema_path)
    return f"at {where} do not match its inputs schema ({rule})"


def offered_tools(skill: Skill, view: AppliedView) -> dict[str, Offered]:
    """The skill's tools the workspace serves without a per-call approval, by public name."""
    import fnmatch

    from reconciler.models.types import ToolSpec

    offered: dict[str, Offered] = {}
    for public, connector, tool in view.served():
        if not any(fnmatch.fnmatchcase(public, pattern) for pattern in skill.tools):
            continue
        if view.require_approval(connector.name, tool) is not None:
            continue
        definition = connector.pins()[tool].get("definition") or {}
        parameters = definition.get("inputSchema") or {"type": "object", "properties": {}}
        spec = ToolSpec(public, str(definition.get("description") or tool), dict(parameters))
        offered[public] = Offered(public, connector.name, tool, spec)
    return offered


def resendable(step: Mapping[str, Any], view: AppliedView) -> bool:
    """Whether an interrupted execution of this skill step may run again without asking: every
    tool it may be offered is marked `idempotentHint` or `readOnlyHint` in its pin (a skill
    without tools always may)."""
    try:
        skill = find(str(step.get("skill")))
    except ClonedError:
        return True  # it fails again at once, calling nothing
    for item in offered_tools(skill, view).values():
        pin = view.connectors[item.connector].pins()[item.tool]
        hints = (pin.get("definition") or {}).get("annotations") or {}
        if hints.get("idempotentHint") is not True and hints.get("readOnlyHint") is not True:
            return False
    return True


def checked_answer(label: str, skill: Skill, text: str | None, messages: Sequence[Message]) -> Any:
    """The answer's JSON (the client checked it against `output`), after the skill's checks."""
    if text is None:  # pragma: no cover - the client refuses an answer without text
        raise SkillFailed(f"{label}: the model sent no answer")
    value = json.loads(text)
    if "citations" in skill.checks:
        problem = citation_problem(value)
        if problem is not None:
            raise SkillFailed(f"{label}: its answer {problem}")
    return value


def citation_problem(value: Any) -> str | None:
    """Why the citations of `{summary, citations: [{n, source}]}` do not agree with the
    summary's `[n]` markers (each marker cited once, each citation used), or None."""
    used = {int(n) for n in CITATION.findall(str(value.get("summary", "")))}
    numbers = [int(item["n"]) for item in value.get("citations") or ()]
    if len(set(numbers)) != len(numbers):
        return "cites a number twice in citations"
    uncited = sorted(used - set(numbers))
    if uncited:
        return f"uses [{uncited[0]}] in its summary without a citation for it"
    unused = sorted(set(numbers) - used)
    if unused:
        return f"lists citation {unused[0]}, which its summary does not use"
    return None


def prompt_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    """The prompt's tokens at one per 4 characters (rounded up): messages, their tool calls
    and the tools' schemas, which the endpoint reads too."""
    chars = sum(len(m.content or "") for m in messages)
    chars += sum(len(call.arguments) for m in messages for call in m.tool_calls)
    chars += sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in tools)
    return math.ceil(chars / modelstep.CHARS_PER_TOKEN)


def _worst_cost(client: ChatModel, tokens: int, out_worst: int) -> float:
    from reconciler.models.types import Usage

    return max(client.cost(Usage(tokens - out_worst, out_worst)), client.cost(Usage(tokens, 0)))


def _micros(usd: float) -> int:
    return math.ceil(usd * 1e6)


def _prefixed(label: str, message: str) -> str:
    return message if message.startswith("step ") else f"{label}: {message}"


def _text(content: Any) -> str:
    return " ".join(str(b.get("text")) for b in content or () if b.get("type") == "text")
