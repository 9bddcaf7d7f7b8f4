"""`cloned drift` (and `cloned plan --refresh-only`): where the actual state left what the
last apply recorded, apart from pending desired changes."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import say
from reconciler.errors import ExitCode


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
    return run(path, as_json=as_json, exit_on_drift=True)


def run(path: Path, *, as_json: bool, exit_on_drift: bool) -> int:
    """Print the drift report; exit 2 on drift when `exit_on_drift`."""
    from reconciler.cli.output import print_json
    from reconciler.engine.drift import check
    from reconciler.load.files import find_root

    report, pending = check(find_root(path))
    code = ExitCode.CHANGES if report.drifted and exit_on_drift else ExitCode.OK
    if as_json:
        print_json(
            {
                "drifted": report.drifted,
                "checked": report.checked,
                "items": [item.to_json() for item in report.items],
                "pending_changes": pending,
                "exit_code": int(code),
            }
        )
        return int(code)
    if not report.drifted:
        say(f"No drift: all {report.checked} applied resources are as the last apply left them.")
    else:
        say(f"Drift: {len(report.items)} finding(s) over {report.checked} applied resources.")
        for item in report.items:
            say(f"  ! {item.address}: {item.kind}: {item.detail}")
        say("Repair with `cloned reconcile --once --self-heal`.")
    if pending is None:
        say("Pending desired changes: unknown (the desired state does not validate).")
    elif pending:
        say(f"Separately, {pending} desired change(s) are pending: see `cloned plan`.")
    return int(code)
