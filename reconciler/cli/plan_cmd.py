"""`cloned plan` and `cloned show FILE`: what would change, decided by policy, as data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from reconciler.cli.output import print_json
from reconciler.errors import ExitCode, UsageError


def _exit_code(plan: dict[str, Any], detailed: bool) -> int:
    if plan["summary"]["deny"]:
        return int(ExitCode.POLICY_DENIED)
    if detailed and plan["changes"]:
        return int(ExitCode.CHANGES)
    return int(ExitCode.OK)


FORMATS = ("text", "json", "markdown")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")


def _render(plan: dict[str, Any], *, as_json: bool, fmt: str) -> None:
    from reconciler.cli import render_plan

    if as_json or fmt == "json":
        print_json(plan)
    elif fmt == "markdown":
        print(render_plan.markdown(plan), end="")
    elif fmt == "text":
        print(render_plan.text(plan, colour=render_plan.use_colour()))
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
) -> int:
    """Show what apply would change, and what policy decides for each change.

    Compares the desired state in .cloned/ with the actual state (the state database, or in a
    fresh clone the committed .cloned/cloned.lock). Each change shows its field-level diff, its
    risk, where it was declared, and the decision of the applied policy: auto, approval (which
    rule, who may approve) or deny. Changes nothing: only --out writes a file (and a saved
    plan is audited), and the validation cache in .cloned/state/ is refreshed.

    Examples:

    \b
      cloned plan
      cloned plan --out tonight.plan && cloned apply tonight.plan
      cloned plan --format markdown > comment.md
      cloned plan --detailed-exitcode || echo "changes pending"
    """
    _check_format(fmt)
    from reconciler.clock import stamp
    from reconciler.engine.planfile import plan_json, record_saved, save
    from reconciler.engine.session import open_session
    from reconciler.load.files import find_root
    from reconciler.state.db import StateDB

    root = find_root(path)
    db = StateDB.open(root, create=False)
    try:
        session = open_session(root, db)
        made = session.plan(tuple(target))
        payload = plan_json(
            made, created_at=stamp(), redactor=session.redactor, policy_source=session.policy_source
        )
        if out is not None:
            save(out, payload)
            if db is not None:
                record_saved(db, session, payload, out)
    finally:
        if db is not None:
            db.close()
    if session.actual.source == "lock":
        print(
            "Note: no state database here; planning against .cloned/cloned.lock as committed in "
            "this checkout (policy and approvers come from it too).",
            file=sys.stderr,
        )
    _render(payload, as_json=as_json, fmt=fmt)
    if out is not None and fmt == "text" and not as_json:
        print(f"\nSaved the plan to {out}. Apply exactly this plan with: cloned apply {out}")
    return _exit_code(payload, detailed)


def show(
    file: Path = typer.Argument(..., help="A plan saved with `cloned plan --out FILE`."),
    as_json: bool = typer.Option(False, "--json", help="Print the saved plan's JSON."),
    fmt: str = typer.Option("text", "--format", help="text, json or markdown."),
) -> int:
    """Print a saved plan, exactly as it was planned."""
    from reconciler.engine.planfile import load

    _check_format(fmt)
    saved = load(file)
    _render(saved.data, as_json=as_json, fmt=fmt)
    return int(ExitCode.OK)
