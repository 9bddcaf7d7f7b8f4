"""`cloned budgets status`: each Budget's use against its limits this period."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="Budgets: how much of each limit this period has used.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("status")
def status(
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Show each applied Budget's use against each of its limits this period.

    Tool calls count one call each against every budget in scope (the workspace's, the
    connector's, the pipeline's) before they are made, and their wall time after. A budget
    with a limit used up refuses the next call (onExceed: block) or asks for an approval of
    it (onExceed: requireApproval).

    Example:

    \b
      cloned budgets status --json | jq '.budgets[] | select(.exhausted) | .name'
    """
    from reconciler.usecases.budgets import status as run

    result = run(path=path)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if not result.budgets:
        say("No budgets are applied.")
    for budget in result.budgets:
        limits = "  ".join(
            f"{limit.name} {_number(limit.used)}/{_number(limit.limit)}" for limit in budget.limits
        )
        mark = "  (exhausted)" if budget.exhausted else ""
        say(
            f"{budget.name}  {budget.scope}  {budget.period} {budget.period_key}  {limits}  "
            f"onExceed {budget.on_exceed}{mark}"
        )
    return int(result.exit_code)


def _number(value: float) -> str:
    return f"{value:g}"
