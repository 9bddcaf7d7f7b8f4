"""`cloned plan` and `cloned show FILE`: what would change, decided by policy, as data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say
from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.usecases.plans import Planned, Shown

FORMATS = ("text", "json", "markdown")


WARNINGS = frozenset({"unsandboxed", "no-vault"})
"""Notes printed as `Warning:` (what will not work as the YAML says), the rest as `Note:`."""


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")


def _render(result: Planned | Shown, *, as_json: bool, fmt: str) -> None:
    from reconciler.cli import render_plan

    if as_json or fmt == "json":
        print_json(result.to_json())
    elif fmt == "markdown":
        print(render_plan.markdown(result.plan), end="")
    elif fmt == "text":
        print(render_plan.text(result.plan, colour=render_plan.use_colour()))
    else:
        _check_format(fmt)


def plan(
    path: Path = typer.Argument(
        Path("."), help="A folder inside the repository (default: here).", show_default=False
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the plan as JSON (format_version 1)."
    ),
    fmt: str = typer.Option("text", "--format", help="text, json or markdown (a PR comment)."),
    out: Path = typer.Option(
        None, "--out", help="Also save the plan to FILE for `cloned apply FILE`."
    ),
    detailed: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 2 when there are changes (0 when none)."
    ),
    target: list[str] = typer.Option(
        [], "--target", help="Plan only ADDR (kind.name) and what it depends on; repeatable."
    ),
    base: str = typer.Option(
        None,
        "--base",
        metavar="REF",
        help="Plan HEAD's commit against REF, both read from git objects: the applied state, "
        "policy and approvers from REF's cloned.lock (CI on a pull request).",
    ),
    refresh: bool = typer.Option(
        False,
        "--refresh",
        help="Ask every registry again about connectors already pinned, and re-hash every "
        "installed connector's files (a plan otherwise reuses the applied pin while a "
        "Connector's source, version and Registry stay as applied, reaches no registry, and "
        "only checks that installed files are there).",
    ),
    refresh_only: bool = typer.Option(
        False,
        "--refresh-only",
        help="Show only drift (as `cloned drift`), not pending desired changes; with "
        "--detailed-exitcode, exit 2 when there is drift.",
    ),
) -> int:
    """Show what apply would change, and what policy decides for each change.

    Compares the desired state in .cloned/ with the actual state (the state database, or in a
    fresh clone the committed .cloned/cloned.lock). Each change shows its field-level diff, its
    risk, where it was declared, and the decision of the applied policy: auto, approval (which
    rule, who may approve, who has) or deny. Changes nothing: only --out writes a file (and a
    saved plan is audited), and the validation cache in .cloned/state/ is refreshed.

    With --base REF, plans what the checked-out branch changes: HEAD's committed .cloned/
    against the cloned.lock committed at REF, with approvals from HEAD's .cloned/approvals/.
    Nothing is checked out and nothing is written; uncommitted edits are not part of it.

    Examples:

    \b
      cloned plan
      cloned plan --out tonight.plan && cloned apply tonight.plan
      cloned plan --format markdown > comment.md
      cloned plan --base origin/main --format markdown > comment.md
      cloned plan --detailed-exitcode || echo "changes pending"
    """
    _check_format(fmt)
    if refresh_only:
        if base is not None or out is not None or target or fmt == "markdown":
            raise UsageError(
                "--refresh-only: cannot be combined with --base, --out, --target "
                "or --format markdown"
            )
        from reconciler.cli import drift_cmd
        from reconciler.usecases.drift import drift

        checked = drift(path=path, exit_on_drift=detailed)
        drift_cmd.render(checked, as_json=as_json or fmt == "json")
        return int(checked.exit_code)
    from reconciler.usecases.plans import plan as run

    result = run(
        path=path, base=base, targets=tuple(target), out=out, detailed=detailed, refresh=refresh
    )
    for note in result.notes:
        label = "Warning" if note.kind in WARNINGS else "Note"
        say(f"{label}: {note.message}", err=True)
    _render(result, as_json=as_json, fmt=fmt)
    saved = result.saved_to
    if saved is not None and fmt == "text" and not as_json:
        say()
        say(f"Saved the plan to {saved}. Apply exactly this plan with: cloned apply {saved}")
    return int(result.exit_code)


def show(
    file: Path = typer.Argument(..., help="A plan saved with `cloned plan --out FILE`."),
    as_json: bool = typer.Option(False, "--json", help="Print the saved plan's JSON."),
    fmt: str = typer.Option("text", "--format", help="text, json or markdown."),
) -> int:
    """Print a saved plan, exactly as it was planned."""
    from reconciler.usecases.plans import show as run

    _check_format(fmt)
    shown = run(file=file)
    _render(shown, as_json=as_json, fmt=fmt)
    return int(shown.exit_code)
