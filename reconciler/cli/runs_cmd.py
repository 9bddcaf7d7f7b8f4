"""`cloned runs list|show|logs|resume|cancel`: executions of Runs (specs/runs.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say

if TYPE_CHECKING:
    from reconciler.usecases.runs import RunRow

app = typer.Typer(
    help="Pipeline runs: list, show, logs, plan (a dry run), resume or cancel.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PATH = typer.Option(Path("."), "--path", help="A folder inside the repository.")
JSON = typer.Option(False, "--json", help="Print JSON.")
REF = typer.Argument(..., help="A run id (run-...), or a Run's name: its newest execution.")


@app.command("list")
def list_(
    name: str = typer.Option(None, "--run", help="Only the executions of this Run."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """List the executions of Runs, the newest first, with their status.

    A Run is executed once per (name, pipeline digest, inputs digest): `cloned apply` queues a
    new execution when a Run is new or its pipeline or inputs changed, and executes it.

    Example:

    \b
      cloned runs list --json | jq '.runs[] | select(.status == "waiting") | .id'
    """
    from reconciler.usecases.runs import list_runs

    found = list_runs(path, name=name)
    if as_json:
        print_json({"runs": [row.to_json() for row in found]})
        return 0
    if not found:
        say("No runs yet. A Run executes when `cloned apply` applies it.")
    for row in found:
        say(_line(row))
    return 0


@app.command("show")
def show(ref: str = REF, path: Path = PATH, as_json: bool = JSON) -> int:
    """Show one run: its status, each step's status and usage, and its artifacts.

    Example:

    \b
      cloned runs show weekly-report
      cloned runs show run-3f9a0c1b2d4e5f60 --json | jq .steps
    """
    from reconciler.usecases.runs import show as run

    detail = run(path, ref)
    if as_json:
        print_json(detail.to_json())
        return 0
    say(_line(detail.run))
    if detail.run.reason:
        say(f"  {detail.run.reason}")
    for step in detail.to_json()["steps"]:
        usage = step.get("usage") or {}
        extra = []
        if usage.get("wall_ms") is not None:
            extra.append(f"{usage['wall_ms']:g} ms")
        if usage.get("input_tokens") is not None:
            extra.append(f"{usage['input_tokens']}+{usage['output_tokens']} tokens")
        if step.get("request"):
            extra.append(f"request {step['request']}")
        if step.get("error"):
            extra.append(str(step["error"]))
        tail = f"  ({', '.join(extra)})" if extra else ""
        say(f"  {step['index'] + 1}. {step['name']}: {step['status']}{tail}")
    for artifact in detail.artifacts:
        say(f"  artifact {artifact['name']}  {artifact['digest']}  {artifact['size']} bytes")
    return 0


@app.command("logs")
def logs(ref: str = REF, path: Path = PATH, as_json: bool = JSON) -> int:
    """Print the audit events of one run: its start, waits and end, and the tool calls of its
    pipeline, in order.

    Example:

    \b
      cloned runs logs weekly-report
    """
    from reconciler.usecases.runs import logs as run

    events = run(path, ref)
    if as_json:
        import json

        for event in events:
            print(json.dumps(event, sort_keys=True))
        return 0
    for event in events:
        payload = event["payload"]
        what = payload.get("status") or payload.get("reason") or payload.get("decision") or ""
        tool = f"{payload['connector']}__{payload['tool']}" if "tool" in payload else ""
        say(f"{event['ts']}  {event['type']:<14} {event['subject']:<24} {tool} {what}".rstrip())
    return 0


@app.command("plan")
def plan(
    name: str = typer.Argument(..., help="The Run's metadata.name in .cloned/."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Dry run: what an execution of Run NAME would do, as .cloned/ declares it, calling
    nothing: each step resolved (templates that read only the inputs; those that read an
    earlier step's output as written), the tool or model it calls, the gates it stops at, and
    the most it may use (calls; tokens and cost of model steps), and the budgets in scope.

    Example:

    \b
      cloned runs plan weekly-report
      cloned runs plan weekly-report --json | jq .may_use
    """
    import json

    from reconciler.usecases.runs import plan_run

    planned = plan_run(path, name)
    if as_json:
        print_json(planned.to_json())
        return 0
    data = planned.to_json()
    ran = f" (this execution is {planned.status}: it does not run again)" if planned.status else ""
    say(f"Run {planned.run} ({planned.run_id}) executes pipeline {planned.pipeline}{ran}")
    say(f"  inputs: {json.dumps(planned.inputs, sort_keys=True)}")
    for step in planned.steps:
        gate = ""
        if step.gate:
            groups = ", ".join(step.gate.get("groups") or [])
            gate = f"  [gate: {step.gate.get('count') or 1} from {groups}]"
        say(f"  {step.index + 1}. {step.name}: {step.kind} {step.target}{gate}")
        if step.arguments:
            say(f"       {json.dumps(step.arguments, sort_keys=True)}")
    use = data["may_use"]
    say(
        f"May use: {use['calls']} calls, {use['tokens']} tokens, ${use['cost_usd']:g}; "
        f"budgets in scope: {', '.join(planned.budgets) or 'none'}."
    )
    return 0


@app.command("resume")
def resume(
    ref: str = REF,
    retry: bool = typer.Option(
        False, "--retry", help="Send an interrupted call again (it may have happened already)."
    ),
    skip: bool = typer.Option(
        False, "--skip", help="Go on without an interrupted call's step (its output is null)."
    ),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Resume a run that waits (a gate, a per-call approval, an interrupted call) or was
    killed: it continues after its last completed step.

    A step interrupted during a call of a tool its server does not mark idempotent is never
    sent again blindly: check whether it happened, then choose --retry or --skip.

    Exit codes: 0 succeeded; 3 still waiting; 1 failed or refused.

    Example:

    \b
      cloned approvals approve 4239fed8f00c --key alice && cloned runs resume weekly-report
    """
    from reconciler.errors import UsageError
    from reconciler.usecases.runs import resume as run

    if retry and skip:
        raise UsageError("--retry and --skip: choose one")
    choice = "retry" if retry else "skip" if skip else None
    done = run(path, ref, choice=choice, progress=None if as_json else _progress())
    if as_json:
        print_json(done.to_json())
        return int(done.exit_code)
    for row in done.runs:
        say(_line(row))
        if row.reason:
            say(f"  {row.reason}")
    return int(done.exit_code)


@app.command("cancel")
def cancel(ref: str = REF, path: Path = PATH, as_json: bool = JSON) -> int:
    """Cancel a queued, waiting or running run (a running one stops after its current step).

    Example:

    \b
      cloned runs cancel run-3f9a0c1b2d4e5f60
    """
    from reconciler.usecases.runs import cancel as run

    row = run(path, ref)
    if as_json:
        print_json(row.to_json())
        return 0
    say(f"Cancelled {row.id} ({row.name}).")
    return 0


def _line(row: RunRow) -> str:
    when = row.finished_at or row.started_at or row.queued_at
    return f"{row.id}  {row.name}  {row.pipeline}  {row.status}  {when}"


def _progress() -> Callable[[str], None] | None:
    """Progress lines on stderr when it is a terminal (quiet otherwise)."""
    if not sys.stderr.isatty():
        return None

    def show(line: str) -> None:
        say(line, err=True)

    return show
