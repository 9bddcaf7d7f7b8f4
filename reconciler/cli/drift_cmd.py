"""`cloned drift` (and `cloned plan --refresh-only`): where the actual state left what the
last apply recorded, apart from pending desired changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say

if TYPE_CHECKING:
    from reconciler.usecases.drift import DriftChecked


def drift(
    path: Path = typer.Argument(
        Path("."), help="A folder inside the repository (default: here).", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Report drift: applied state that no longer is what the last apply left.

    Checks every applied record against the digest it was applied with (edited outside
    Cloned?), against the audit log's last apply of it (changed, added or removed without an
    audited apply?), and against .cloned/cloned.lock (missing, hand-edited or stale?). Pending
    desired changes are not drift; they are counted separately (see `cloned plan`). Read-only;
    `cloned reconcile --self-heal` repairs drift.

    Exit codes: 0 no drift; 2 drift found; 1 error (e.g. no state database here).

    Examples:

    \b
      cloned drift
      cloned drift --json | jq '.items[]'
    """
    from reconciler.usecases.drift import drift as run

    result = run(path=path, exit_on_drift=True)
    render(result, as_json=as_json)
    return int(result.exit_code)


def render(result: DriftChecked, *, as_json: bool) -> None:
    """The drift report: its JSON, or lines for people."""
    if as_json:
        print_json(result.to_json())
        return
    if not result.drifted:
        say(f"No drift: all {result.checked} applied resources are as the last apply left them.")
    else:
        say(f"Drift: {len(result.items)} finding(s) over {result.checked} applied resources.")
        for item in result.items:
            say(f"  ! {item.address}: {item.kind}: {item.detail}")
        if any(item.kind != "tools" for item in result.items):
            say("Repair with `cloned reconcile --once --self-heal`.")
        if any(item.kind == "tools" for item in result.items):
            say("Live tools that differ from the pins are a change to review: `cloned plan`.")
    if result.pending is None:
        say("Pending desired changes: unknown (the desired state does not validate).")
    elif result.pending:
        say(f"Separately, {result.pending} desired change(s) are pending: see `cloned plan`.")
