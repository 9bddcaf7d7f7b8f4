"""`cloned policy show [PATH] [--json]`: the active policy packs and every rule they hold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, report_failure, say

if TYPE_CHECKING:
    from reconciler.usecases.policy import Pack, PolicyShown

COMBINING = (
    "A change is forbidden if any matching rule denies it; otherwise it needs every matching\n"
    "approval rule satisfied; otherwise it applies automatically."
)
WIDTH = 100

app = typer.Typer(
    help="Inspect the policy that decides which changes apply, need approval or are forbidden.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("show")
def show(
    path: Path = typer.Argument(
        Path(),
        help="A folder inside the repository (default: the current one); Cloned finds .cloned/ "
        "there or in a folder above.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of rule objects."),
    desired: bool = typer.Option(
        False,
        "--desired",
        help="Show the policy .cloned/ proposes instead of the applied one that decides plans.",
    ),
) -> int:
    """Show the active policy packs and every rule: decision, what it matches, approvals.

    The active policy is the applied one (state database, or cloned.lock in a fresh clone):
    it decides every plan, so a branch cannot loosen the policy that judges it. Before the first
    apply it is the one .cloned/ declares. --desired shows what .cloned/ proposes.

    Packs apply together: a change is forbidden if any matching rule denies it, and needs
    every matching approval rule satisfied. An overlay can only add requirements.

    Examples:

    \b
      cloned policy show
      cloned policy show --json | jq '.[] | select(.decision == "approval") | .rule'
    """
    from reconciler.usecases.policy import show as run

    result = run(path=path, desired=desired)
    if as_json:
        if result.error is not None:
            # stderr says it too, with the repository-relative paths it has always shown here
            report_failure(result.error, result.problems, result.hint, None)
        print_json(result.to_json())
    elif result.error is not None:
        report_failure(result.error, result.problems, result.hint, result.root)
    else:
        _say_policy(result)
    return int(result.exit_code)


def _say_policy(result: PolicyShown) -> None:
    """Each pack with its rules and runtime rules, how packs combine, and unused packs."""
    say(f"Policy from {result.source}: {', '.join(result.pack_names)}")
    for shown in result.packs:
        pack = shown.pack
        say()
        say(_heading(pack))
        if pack.description:
            _say_wrapped(pack.description, indent="  ")
        for rule in shown.rules:
            say(f"  {rule.rule.id}  {rule.decision}")
            _say_wrapped(f"when: {rule.when}", indent="      ")
            if rule.rule.description:
                _say_wrapped(rule.rule.description, indent="      ")
        for line in _extras(pack):
            say(f"  {line}")
    say()
    for line in COMBINING.splitlines():
        say(line)
    if result.inactive:
        say()
        names = ", ".join(result.inactive)
        say(f"Declared but not listed in Workspace policyPacks (no effect): {names}")


def _say_wrapped(text: str, *, indent: str) -> None:
    """`text` filled to WIDTH columns, each line inert (its own line breaks become spaces)."""
    import textwrap

    for line in textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    ):
        say(line)


def _heading(pack: Pack) -> str:
    """`research-overlay (extends baseline)`, `baseline (built-in)`."""
    origin = "built-in" if pack.builtin else f"extends {pack.extends}" if pack.extends else ""
    return f"{pack.name} ({origin})" if origin else pack.name


def _extras(pack: Pack) -> list[str]:
    """The pack's runtime rules, one line each (only those it sets)."""
    lines = []
    if pack.tools_deny:
        lines.append(f"tools denied: {', '.join(pack.tools_deny)}")
    if pack.tools_require_approval:
        lines.append(f"tools needing approval per call: {', '.join(pack.tools_require_approval)}")
    if pack.egress_allow_hosts:
        lines.append(f"egress allowed only to: {', '.join(pack.egress_allow_hosts)}")
    if pack.egress_deny_hosts:
        lines.append(f"egress denied to: {', '.join(pack.egress_deny_hosts)}")
    limits = ((pack.calls_per_minute, "minute"), (pack.calls_per_hour, "hour"))
    rates = [f"{count}/{unit}" for count, unit in limits if count]
    if rates:
        lines.append(f"tool calls at most: {', '.join(rates)}")
    if pack.redaction:
        lines.append(f"redacted: {', '.join(name for name, _ in pack.redaction)}")
    return lines
