"""Executing a run: its steps in order, each journaled, resumable after any crash
(specs/runs.md).

For each step, in order:

1. a step already `done` (or `skipped`) is not run again: its journaled output is what later
   steps read;
2. its arguments (a tool step's `with`, a model step's prompt) are resolved from the inputs and
   the earlier steps' outputs (`pipelines.expressions`), and their digest taken;
3. a `gate:` opens (or finds) an approval request bound to the run, the step and that digest;
   until it is approved the run is `waiting`, and a denial fails it;
4. the step is journaled `running` (committed) before its call, and `done` with its output and
   usage (or `failed`) in the transaction that records the outcome;
5. the call: a tool step is one governed call (`governed.calls`, via `pipeline`: allowed,
   pinned, valid, approved, budgets, limits, redaction, audit); a model step one chat
   completion within the token and cost budgets (`runs.modelstep`).

A run killed at any point resumes after its last completed step. A step found `running` was
interrupted during its call: a model step, or a tool the server marks `idempotentHint`, is
sent again; any other tool is not re-sent blindly: the run waits until a person chooses
(`cloned runs resume ID --retry` or `--skip`). When every step is done, the declared outputs
are resolved, stored as artifacts and signed into the run's provenance (`artifacts.publish`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reconciler.canonical import canonical_json, digest_of
from reconciler.clock import SYSTEM, Clock, stamp
from reconciler.errors import ClonedError
from reconciler.redact import Redactor, active
from reconciler.state import runs
from reconciler.state.db import StateDB
from reconciler.state.lock import pid_alive
from reconciler.state.runs import RunRow, StepRow

if TYPE_CHECKING:
    from reconciler.governed.applied import AppliedView
    from reconciler.governed.calls import GovernedCaller

Choice = Literal["retry", "skip"]
INTERRUPTED = "interrupted"
"""The `error` of a step found `running` whose call may have happened: a person chooses."""
FINISHED = ("succeeded", "failed", "cancelled")


class RunRefused(ClonedError):
    """A run that cannot be executed now (unknown, finished, or another process executes it)."""


@dataclass
class StepResult:
    """What one step's call came to."""

    output: Any = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    waiting: str | None = None
    """The approval request a per-call approval waits on (the step is paused, not failed)."""
    over_budget: str | None = None
    """Why a `requireApproval` budget has no room: the step pauses behind an approval."""


Progress = Callable[[str], None]


class Runner:
    """Executes runs of one workspace (see the module). One per process: it shares one
    supervisor and one governed call path across the runs it executes."""

    def __init__(
        self,
        root: Path,
        caller: GovernedCaller,
        *,
        actor: str = "runner",
        clock: Clock = SYSTEM,
        progress: Progress | None = None,
    ) -> None:
        db = StateDB.open(root, create=False)
        if db is None:
            raise ClonedError(f"{root}: nothing is applied here", hint="run `cloned apply` first")
        self.root = root
        self.db = db
        self.caller = caller
        self.actor = actor
        self.clock = clock
        self._progress = progress or (lambda _line: None)
        self._total = 0
        self._approved: str | None = None

    def close(self) -> None:
        self.db.close()

    async def execute(self, run_id: str, *, choice: Choice | None = None) -> RunRow:
        """Execute (or resume) run `run_id` until it finishes or waits; its row after."""
        row = self._claim(run_id)
        if row.status in FINISHED:
            return row
        view = self.caller.view()
        redactor = self.caller.redactor(view)
        plan = row.plan()
        steps: list[dict[str, Any]] = list((plan["pipeline"].get("spec") or {}).get("steps") or [])
        self._total = len(steps)
        journal = runs.steps(self.db, run_id)
        context: dict[str, Any] = {"inputs": plan["inputs"], "steps": {}}
        for index, step in enumerate(steps):
            entry = journal.get(index)
            name = str(step["name"])
            if entry is not None and entry.status in ("done", "skipped"):
                context["steps"][name] = {"output": entry.value()}
                continue
            stopped = await self._step(row, index, step, entry, context, view, redactor, choice)
            if stopped is not None:
                return stopped
            choice = None  # a person's choice is for the step that waited on it
            if self._cancelled(run_id):
                return self._finish(row, "cancelled", "cancelled while it ran", redactor)
        return self._publish(row, plan, steps, context, view, redactor)

    # --- one step ---------------------------------------------------------------------------

    async def _step(
        self,
        row: RunRow,
        index: int,
        step: Mapping[str, Any],
        entry: StepRow | None,
        context: dict[str, Any],
        view: AppliedView,
        redactor: Redactor,
        choice: Choice | None,
    ) -> RunRow | None:
        """Run one step; the run's row when the run stops here (waits, fails), else None."""
        from reconciler.pipelines.expressions import ExpressionError

        name = str(step["name"])
        kind = step_kind(step)
        total = self._total
        try:
            arguments = resolved_arguments(step, context)
        except ExpressionError as exc:
            return self._fail_step(row, index, name, None, f"step {name}: {exc.message}", redactor)
        args_digest = digest_of(canonical_json(arguments))
        if (
            entry is not None
            and entry.status in ("running", "waiting")
            and (entry.status == "running" or entry.error == INTERRUPTED)
        ):
            if not self._resendable(kind, step, view) and choice is None:
                return self._interrupted(row, index, name, args_digest, redactor)
            if choice == "skip":
                self._skip(row, index, name, args_digest, context)
                return None
        self._approved = entry.request_id if entry is not None else None
        gate = step.get("gate")
        if gate:
            waiting = self._gate(row, index, name, step, kind, arguments, args_digest, redactor)
            if waiting is not None:
                return waiting
        self._progress(f"run {row.id}: step {index + 1}/{total} {name} ({kind}) ...")
        began = time.monotonic()
        # The approval it went on with is journaled before the call: a crash after it must not
        # drop the approval from the provenance.
        self._journal(
            row.id, index, name, "running", args_digest=args_digest, request=self._approved
        )
        result = await self._call(row, kind, step, arguments, view, redactor)
        if result.over_budget is not None:
            waiting = self._budget_gate(row, index, name, args_digest, result.over_budget, redactor)
            if waiting is not None:
                return waiting
            result = await self._call(row, kind, step, arguments, view, redactor, over=True)
        elapsed = round((time.monotonic() - began) * 1000, 1)
        if result.waiting is not None:
            self._journal(
                row.id, index, name, "waiting", args_digest=args_digest, request=result.waiting
            )
            reason = (
                f"step {name} waits for the approval of its call (request {result.waiting}): "
                f"approve it, then `cloned runs resume {row.id}`"
            )
            return self._wait(row, reason, redactor)
        if result.error is not None:
            return self._fail_step(row, index, name, args_digest, result.error, redactor)
        usage = {**(result.usage or {}), "wall_ms": elapsed}
        pinned = _pin_of(step, kind, view)
        if pinned is not None:
            usage["pin"] = pinned  # the pin the call was made under (provenance names it)
        # A tool's result is redacted by the governed path already; a model's answer is not:
        # whatever a step outputs is journaled, read by later steps and published redacted.
        output = redactor.data(result.output)
        self._journal(
            row.id,
            index,
            name,
            "done",
            args_digest=args_digest,
            output=output,
            usage=usage,
            request=self._approved,
        )
        context["steps"][name] = {"output": output}
        self._progress(f"run {row.id}: step {index + 1}/{total} {name} done ({elapsed:g} ms)")
        return None

    async def _call(
        self,
        row: RunRow,
        kind: str,
        step: Mapping[str, Any],
        arguments: Any,
        view: AppliedView,
        redactor: Redactor,
        *,
        over: bool = False,
    ) -> StepResult:
        if kind == "tool":
            return await self._tool(row, step, arguments)
        if kind == "model":
            from reconciler.runs.modelstep import model_step

            return await model_step(
                self.root, self.db, row, step, arguments, view, clock=self.clock, over_approved=over
            )
        if kind == "skill":
            from reconciler.runs.skillstep import Context, skill_step

            context = Context(
                self.root, self.db, row, step, view, self.caller, redactor, self.clock, self.actor
            )
            return await skill_step(context, arguments, over_approved=over)
        return StepResult(error=f"step {step['name']}: {kind} steps are not supported here")

    async def _tool(self, row: RunRow, step: Mapping[str, Any], arguments: Any) -> StepResult:
        from reconciler.governed.calls import CallRequest

        tool = step["tool"]
        request = CallRequest(
            str(tool["connector"]),
            str(tool["name"]),
            dict(arguments) if isinstance(arguments, Mapping) else {},
            via="pipeline",
            pipeline=row.pipeline,
        )
        outcome = await self.caller.call(request)
        if outcome.decision == "approval":
            return StepResult(waiting=outcome.request_id)
        if outcome.decision != "allowed" or outcome.is_error:
            reason = outcome.reason or _text(outcome.content) or "the tool answered an error"
            return StepResult(error=f"step {step['name']}: {reason}")
        return StepResult(output=tool_output(outcome.structured, outcome.content))

    def _resendable(self, kind: str, step: Mapping[str, Any], view: AppliedView) -> bool:
        """Whether an interrupted call of this step may be sent again without asking: a model
        step, a tool whose pinned definition says `idempotentHint: true`, or a skill whose
        every tool may be sent again (`runs.skillstep.resendable`)."""
        if kind == "skill":
            from reconciler.runs.skillstep import resendable

            return resendable(step, view)
        if kind != "tool":
            return True
        tool = step["tool"]
        connector = view.connectors.get(str(tool["connector"]))
        if connector is None:
            return False
        pin = connector.pins().get(str(tool["name"])) or {}
        annotations = (pin.get("definition") or {}).get("annotations") or {}
        return annotations.get("idempotentHint") is True

    # --- gates ------------------------------------------------------------------------------

    def _gate(
        self,
        row: RunRow,
        index: int,
        name: str,
        step: Mapping[str, Any],
        kind: str,
        arguments: Any,
        args_digest: str,
        redactor: Redactor,
    ) -> RunRow | None:
        from reconciler.runs import gates

        view = self.caller.view()
        gate = step["gate"]
        subject = gates.GateSubject(
            view.workspace,
            row.name,
            row.id,
            str(step.get("name") or name),
            args_digest,
            int(gate.get("count") or 1),
            tuple(gate.get("groups") or ()),
            _called(self.db, step, kind, view),
        )
        target = _target(step, kind)
        shown = gates.summary(subject, arguments=redactor.data(arguments), kind=kind, target=target)
        at = stamp(self.clock.now())
        with self.db.transaction() as connection:
            state = gates.judge(
                connection,
                subject,
                root=self.root,
                workspace_spec=view.workspace_spec,
                shown=shown,
                actor=self.actor,
                at=at,
                now=self.clock.now(),
                redactor=redactor,
            )
        if state.status == "approved":
            self._approved = state.request.id
            return None
        if state.status in ("denied", "expired"):
            reason = f"the gate of step {name} was {state.status} (request {state.request.id})"
            return self._fail_step(row, index, name, args_digest, reason, redactor)
        self._journal(
            row.id, index, name, "waiting", args_digest=args_digest, request=state.request.id
        )
        reason = (
            f"step {name} waits at its gate for {subject.count} approval(s) from "
            f"{', '.join(subject.groups)}: `cloned approvals approve {state.request.id} "
            f"--key KEY`, then `cloned runs resume {row.id}`"
        )
        return self._wait(row, reason, redactor)

    def _budget_gate(
        self,
        row: RunRow,
        index: int,
        name: str,
        args_digest: str,
        reason: str,
        redactor: Redactor,
    ) -> RunRow | None:
        """A model step over a `requireApproval` budget: None once one admin approved this
        very call's excess, else the run waits (or fails on a denial)."""
        step = {"name": f"{name}.budget", "gate": {"count": 1, "groups": ["admins"]}}
        return self._gate(row, index, name, step, "model", {"over": reason}, args_digest, redactor)

    # --- the run's status -------------------------------------------------------------------

    def _claim(self, run_id: str) -> RunRow:
        """Take run `run_id` for this process (`running`, this pid as its owner)."""
        at = stamp(self.clock.now())
        redactor = active()
        with self.db.transaction() as connection:
            row = runs.get(connection, run_id)
            if row is None:
                raise RunRefused(f"no run {run_id!r}", hint="`cloned runs list` shows the runs")
            if row.status in FINISHED:
                return row
            busy = row.status == "running" and row.owner not in (None, os.getpid())
            if busy and row.owner is not None and pid_alive(row.owner):
                raise RunRefused(
                    f"run {run_id} is being executed by process {row.owner}; wait for it"
                )
            resumed = row.started_at is not None
            runs.set_status(connection, run_id, "running", owner=os.getpid(), started_at=at)
            self._event(
                connection,
                "run.resumed" if resumed else "run.started",
                row,
                {"status": "running"},
                redactor,
            )
        claimed = runs.get(self.db, run_id)
        assert claimed is not None
        return claimed

    def _cancelled(self, run_id: str) -> bool:
        row = runs.get(self.db, run_id)
        return row is not None and row.status == "cancelled"

    def _wait(self, row: RunRow, reason: str, redactor: Redactor) -> RunRow:
        """The run waits, unless it was cancelled while its step ran: a cancellation stands
        (a wait would make it resumable, and the call it waits on would be made)."""
        with self.db.transaction() as connection:
            current = runs.get(connection, row.id)
            if current is not None and current.status == "cancelled":
                self._progress(f"run {row.id}: cancelled")
                return current
            runs.set_status(connection, row.id, "waiting", reason=reason)
            self._event(connection, "run.waiting", row, {"reason": reason}, redactor)
        self._progress(f"run {row.id}: waiting: {reason}")
        waited = runs.get(self.db, row.id)
        assert waited is not None
        return waited

    def _finish(self, row: RunRow, status: str, reason: str | None, redactor: Redactor) -> RunRow:
        at = stamp(self.clock.now())
        with self.db.transaction() as connection:
            current = runs.get(connection, row.id)
            final = "cancelled" if current is not None and current.status == "cancelled" else status
            runs.set_status(connection, row.id, final, reason=reason, finished_at=at)
            self._event(
                connection, "run.finished", row, {"status": final, "reason": reason}, redactor
            )
        finished = runs.get(self.db, row.id)
        assert finished is not None
        self._progress(f"run {row.id}: {finished.status}" + (f": {reason}" if reason else ""))
        return finished

    def _fail_step(
        self,
        row: RunRow,
        index: int,
        name: str,
        args_digest: str | None,
        reason: str,
        redactor: Redactor,
    ) -> RunRow:
        text = redactor.text(reason)
        self._journal(row.id, index, name, "failed", args_digest=args_digest, error=text)
        return self._finish(row, "failed", text, redactor)

    def _interrupted(
        self, row: RunRow, index: int, name: str, args_digest: str, redactor: Redactor
    ) -> RunRow:
        self._journal(row.id, index, name, "waiting", args_digest=args_digest, error=INTERRUPTED)
        reason = (
            f"step {name} was interrupted during its call, and its tool is not marked "
            "idempotent: it may or may not have happened. Check, then "
            f"`cloned runs resume {row.id} --retry` (send it again) or `--skip` (go on without it)"
        )
        return self._wait(row, reason, redactor)

    def _skip(
        self, row: RunRow, index: int, name: str, args_digest: str, context: dict[str, Any]
    ) -> None:
        self._journal(row.id, index, name, "skipped", args_digest=args_digest)
        context["steps"][name] = {"output": None}

    def _journal(
        self,
        run_id: str,
        index: int,
        name: str,
        status: str,
        *,
        args_digest: str | None = None,
        output: Any = None,
        usage: dict[str, Any] | None = None,
        request: str | None = None,
        error: str | None = None,
    ) -> None:
        at = stamp(self.clock.now())
        with self.db.transaction() as connection:
            previous = runs.step(connection, run_id, index)
            started = previous.started_at if previous is not None and status != "running" else at
            runs.put_step(
                connection,
                StepRow(
                    run_id=run_id,
                    idx=index,
                    name=name,
                    status=status,
                    args_digest=args_digest,
                    output=json.dumps(output, sort_keys=True) if status == "done" else None,
                    usage=json.dumps(usage, sort_keys=True) if usage is not None else None,
                    request_id=request,
                    error=error,
                    started_at=started,
                    finished_at=at if status in ("done", "failed", "skipped") else None,
                ),
            )

    def _event(
        self,
        connection: Any,
        kind: str,
        row: RunRow,
        extra: dict[str, Any],
        redactor: Redactor,
    ) -> None:
        from reconciler.audit.log import append

        payload = {"run": row.name, "id": row.id, "pipeline": row.pipeline, **extra}
        append(
            connection,
            actor=self.actor,
            type=kind,
            subject=f"run.{row.name}",
            payload=payload,
            redactor=redactor,
        )

    # --- outputs and provenance -------------------------------------------------------------

    def _publish(
        self,
        row: RunRow,
        plan: Mapping[str, Any],
        steps: list[dict[str, Any]],
        context: dict[str, Any],
        view: AppliedView,
        redactor: Redactor,
    ) -> RunRow:
        from reconciler.runs.outputs import publish_run

        try:
            publish_run(self.root, self.db, row, plan, steps, context, view, clock=self.clock)
        except ClonedError as exc:
            return self._finish(row, "failed", f"outputs: {exc.message}", redactor)
        return self._finish(row, "succeeded", None, redactor)


def step_kind(step: Mapping[str, Any]) -> str:
    """`tool`, `model` or `skill`: which one the step sets."""
    return next((kind for kind in ("tool", "model", "skill") if step.get(kind)), "tool")


def resolved_arguments(step: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """The step's arguments with every `${...}` resolved: a tool step's `with`, a model step's
    model block (templates in its prompt and system text only, the parts the load-time checks
    read: its schema's strings are a JSON Schema, never evaluated), a skill step's `with`."""
    from reconciler.pipelines.expressions import resolve

    kind = step_kind(step)
    if kind == "model":
        block = dict(step["model"])
        for key in ("prompt", "system"):
            if block.get(key) is not None:
                block[key] = resolve(block[key], context)
        return block
    return resolve(dict(step.get("with") or {}), context)


def tool_output(structured: Any, content: Any) -> Any:
    """What a tool step outputs: the structured content when the tool gave one, else the text
    of its one text block, else the content blocks."""
    if structured is not None:
        return structured
    blocks = list(content or ())
    texts = [block.get("text") for block in blocks if block.get("type") == "text"]
    if len(texts) == 1 and len(blocks) == 1:
        return texts[0]
    return blocks


def _text(content: Any) -> str:
    return " ".join(str(b.get("text")) for b in content or () if b.get("type") == "text")


def _pin_of(step: Mapping[str, Any], kind: str, view: AppliedView) -> str | None:
    """The pin digest of a tool step's tool, as applied now (None for other kinds)."""
    tool = step.get("tool") if kind == "tool" else None
    if not tool:
        return None
    connector = view.connectors.get(str(tool["connector"]))
    pin = connector.pins().get(str(tool["name"])) if connector is not None else None
    return str(pin["digest"]) if pin else None


def _called(db: StateDB, step: Mapping[str, Any], kind: str, view: AppliedView) -> str:
    """What a gate binds besides the arguments: the tool's pin, or the Model's applied state
    digest (a skill's: the digest of its Model's state, when it names one through `with`)."""
    pinned = _pin_of(step, kind, view)
    if pinned is not None:
        return pinned
    model = (step.get("model") or {}).get("name") if kind == "model" else None
    if model:
        cursor = db.reader.execute(
            "SELECT digest FROM resources WHERE address = ?", (f"model.{model}",)
        )
        found = cursor.fetchone()
        return str(found[0]) if found else ""
    return ""


def _target(step: Mapping[str, Any], kind: str) -> str:
    if kind == "tool" and step.get("tool"):
        return f"{step['tool']['connector']}__{step['tool']['name']}"
    if kind == "model" and step.get("model"):
        return str(step["model"].get("name"))
    return str(step.get("skill") or step.get("name"))
