"""A `model` step: one chat completion from an applied Model, within the token and cost budgets
of every Budget in scope (the workspace's and the pipeline's; specs/runs.md, "Budgets").

Before the call, each budget must have room for the most the call can use: the prompt's
tokens, estimated at one per 4 characters (rounded up), plus the step's `maxTokens`, and their
cost at the Model's prices. That much is reserved, in one `BEGIN IMMEDIATE` transaction with
the check, so concurrent runs cannot both take the last of a budget; after the call the
reservation is replaced by the real usage the server reported; an answer that breaks the
contract (`invalid`, `schema`: its usage cannot be believed) keeps the reservation, a call with
no answer is charged nothing. A budget without room: `block` fails the step, `requireApproval`
pauses it behind an approval (a gate for the budget).

The Model's API key, when it names one (`apiKey`: a SecretRef), is read from the vault for this
call only, when the SecretRef's `usedBy.pipelines` names the run's pipeline (else the step
fails: not granted), and is registered with the redactor as every vault value is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.clock import Clock
from reconciler.errors import ClonedError
from reconciler.state import usage

if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.governed.applied import AppliedBudget, AppliedView
    from reconciler.runs.runner import StepResult
    from reconciler.state.db import StateDB
    from reconciler.state.runs import RunRow

CHARS_PER_TOKEN = 4
ANSWERED = ("invalid", "schema")
"""The failures of a call the endpoint answered (200, but an answer that breaks the contract):
it may have used all it was allowed, so the reservation stands."""


@dataclass(frozen=True)
class Reservation:
    """What a model call reserved: (budget, period) and the tokens and cost micros held."""

    periods: tuple[tuple[str, str], ...]
    tokens: int
    cost_micros: int


def estimate_tokens(messages: list[Any], max_tokens: int) -> int:
    """The most a call may use: its prompt at one token per 4 characters, plus `max_tokens`."""
    chars = sum(len(message.content or "") for message in messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + max_tokens


def over(budget: AppliedBudget, used: usage.Use, tokens: int, cost_micros: int) -> str | None:
    """Why `budget` has no room for `tokens` and `cost_micros` more, or None."""
    limits = budget.spec.limits
    where = f"budget {budget.name} ({budget.period} {used.period})"
    if limits.tokens is not None and used.tokens + tokens > limits.tokens:
        return (
            f"{where}: {used.tokens} of {limits.tokens} tokens used, and this call may use "
            f"up to {tokens}"
        )
    if limits.cost_usd is not None and used.cost_micros + cost_micros > limits.cost_usd * 1e6:
        return (
            f"{where}: ${used.cost_micros / 1e6:.4f} of ${limits.cost_usd:g} used, and this call "
            f"may cost up to ${cost_micros / 1e6:.4f}"
        )
    if limits.calls is not None and used.calls >= limits.calls:
        return f"{where}: all {limits.calls} calls used"
    return None


def reserve(
    db: StateDB,
    budgets: list[AppliedBudget],
    clock: Clock,
    tokens: int,
    cost_micros: int,
    *,
    force: bool = False,
) -> Reservation | tuple[AppliedBudget, str]:
    """Reserve `tokens` and `cost_micros` (and one call) in every budget, or the first budget
    without room and why (`force`: an approved excess, counted all the same)."""
    moment = clock.now()
    periods = tuple((b.name, usage.period_key(b.period, moment)) for b in budgets)
    with db.transaction() as connection:
        for budget, (name, period) in zip(budgets, periods, strict=True):
            reason = over(budget, usage.get(connection, name, period), tokens, cost_micros)
            if reason is not None and not force:
                return budget, reason
        for name, period in periods:
            usage.add(connection, name, period, calls=1, tokens=tokens, cost_micros=cost_micros)
    return Reservation(periods, tokens, cost_micros)


def settle(
    db: StateDB, held: Reservation, tokens: int, cost_micros: int, wall_ms: int, *, calls: int = 0
) -> None:
    """Replace a reservation by what the call really used (`calls`: completions beyond the one
    reserved, as a skill step's later turns are)."""
    with db.transaction() as connection:
        for name, period in held.periods:
            usage.add(
                connection,
                name,
                period,
                calls=calls,
                tokens=tokens - held.tokens,
                cost_micros=cost_micros - held.cost_micros,
                wall_ms=wall_ms,
            )


async def model_step(
    root: Path,
    db: StateDB,
    row: RunRow,
    step: Mapping[str, Any],
    block: Mapping[str, Any],
    view: AppliedView,
    *,
    clock: Clock,
    over_approved: bool = False,
) -> StepResult:
    """One model step (see the module); `block` is the step's `model:` with its templates
    resolved; `over_approved`: an approval lets it exceed a `requireApproval` budget."""
    import time

    import anyio

    from reconciler.models.client import ChatModel
    from reconciler.models.types import Message, ModelFailed, Usage
    from reconciler.runs.runner import StepResult

    name = str(step["name"])
    try:
        model_name, spec = applied_model_spec(db, str(block["name"]))
        key = api_key(root, view, spec, row.pipeline)
    except ClonedError as exc:
        return StepResult(error=f"step {name}: {exc.message}")
    messages = []
    if block.get("system"):
        messages.append(Message("system", str(block["system"])))
    messages.append(Message("user", _text(block.get("prompt"))))
    max_tokens = int(block.get("maxTokens") or 1024)
    with ChatModel(model_name, spec, api_key=key, denies=view.policy.registry_denies) as client:
        worst = estimate_tokens(messages, max_tokens)
        worst_cost = _micros(client.cost(Usage(worst - max_tokens, max_tokens)))
        budgets = view.budgets_for("", row.pipeline)
        held = reserve(db, budgets, clock, worst, worst_cost, force=over_approved)
        if not isinstance(held, Reservation):
            budget, reason = held
            if budget.on_exceed == "requireApproval":
                return StepResult(over_budget=f"{reason} (onExceed requireApproval)")
            return StepResult(error=f"step {name}: {reason}")
        began = time.monotonic()
        try:
            completion = await anyio.to_thread.run_sync(
                lambda: client.complete(
                    messages,
                    max_tokens=max_tokens,
                    schema=block.get("schema"),
                    timeout=float(step.get("timeoutSeconds") or 120),
                )
            )
        except ModelFailed as exc:
            # An endpoint that answered did the work, and its report cannot be believed: it
            # is charged what was reserved. One that gave no usable answer is charged nothing.
            tokens, cost_micros = (0, 0) if exc.kind not in ANSWERED else (worst, worst_cost)
            settle(db, held, tokens, cost_micros, round((time.monotonic() - began) * 1000))
            return StepResult(error=f"step {name}: model {model_name}: {exc.message}")
        used = completion.usage
        cost = client.cost(used)
    settle(
        db,
        held,
        used.input_tokens + used.output_tokens,
        _micros(cost),
        round((time.monotonic() - began) * 1000),
    )
    output: Any = completion.text
    if block.get("schema") is not None and completion.text is not None:
        output = json.loads(completion.text)
    return StepResult(
        output=output,
        usage={
            "model": model_name,
            "input_tokens": used.input_tokens,
            "output_tokens": used.output_tokens,
            "cost_usd": round(cost, 6),
        },
    )


def applied_model_spec(db: StateDB, name: str) -> tuple[str, Any]:
    """The applied Model `name`'s spec."""
    from reconciler.load.typed import applied_model
    from reconciler.state import resources as rows

    with db.transaction() as connection:
        row = rows.get(connection, f"model.{name}")
    if row is None:
        raise ClonedError(f"no Model {name!r} is applied")
    model = applied_model("Model", name, json.loads(row.state), source="the applied state")
    return name, model.spec


def api_key(root: Path, view: AppliedView, spec: Any, pipeline: str) -> str | None:
    """The Model's API key for a step of `pipeline`, read from the vault now (None when the
    Model names none)."""
    ref_name = getattr(spec, "api_key", None)
    if not ref_name:
        return None
    from reconciler.home import cloned_home
    from reconciler.providers.grants import vault_name
    from reconciler.vault.select import open_vault

    ref = view.secret_refs.get(ref_name)
    if ref is None:
        raise ClonedError(f"the Model's apiKey names SecretRef {ref_name}, which is not applied")
    if pipeline not in ref.used_by.pipelines:
        raise ClonedError(
            f"secret {ref_name} is not granted to pipeline {pipeline} "
            f"(secretref.{ref_name} usedBy.pipelines does not name it)"
        )
    vault = open_vault(root, view.workspace, view.workspace_spec, home=cloned_home())
    return vault.get(vault_name(ref.ref)).value


def _micros(usd: float) -> int:
    return math.ceil(usd * 1e6)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
