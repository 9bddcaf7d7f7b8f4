"""`cloned plan` and `cloned show FILE`: what would change, decided by policy, as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reconciler.cli.output import print_json, say
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
    base: str = typer.Option(
        None,
        "--base",
        metavar="REF",
        help="Plan HEAD's commit against REF, both read from git objects: the applied state, "
        "policy and approvers from REF's cloned.lock (CI on a pull request).",
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
        from reconciler.cli.drift_cmd import run

        return run(path, as_json=as_json or fmt == "json", exit_on_drift=detailed)
    from reconciler.clock import stamp
    from reconciler.engine.planfile import record_saved, save
    from reconciler.engine.preview import preview
    from reconciler.load.files import find_root
    from reconciler.state.db import StateDB

    root = find_root(path)
    previewed = preview(root, base=base, targets=tuple(target))
    payload = previewed.to_json(created_at=stamp())
    if out is not None:
        save(out, payload)
        if base is None:
            db = StateDB.open(root, create=False)
            if db is not None:
                try:
                    record_saved(db, previewed.session, payload, out)
                finally:
                    db.close()
    if base is not None:
        _note_uncommitted(root)
    elif previewed.session.actual.source == "lock":
        say(
            "Note: no state database here; planning against .cloned/cloned.lock as committed in "
            "this checkout (policy and approvers come from it too). In CI, prefer "
            "--base REF: it reads them from the base branch instead.",
            err=True,
        )
    _render(payload, as_json=as_json, fmt=fmt)
    if out is not None and fmt == "text" and not as_json:
        say()
        say(f"Saved the plan to {out}. Apply exactly this plan with: cloned apply {out}")
    return _exit_code(payload, detailed)


def _note_uncommitted(root: Path) -> None:
    from reconciler.engine.revision import uncommitted

    changed = uncommitted(root)
    if changed:
        say(
            f"Note: {len(changed)} uncommitted change(s) under .cloned/ are not part of this "
            f"plan (--base plans HEAD's commit), e.g. {changed[0]}",
            err=True,
        )


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
