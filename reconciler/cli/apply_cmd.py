"""`cloned apply [PLANFILE]`: converge, under the lock, with every step audited."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import say
from reconciler.errors import ExitCode

if TYPE_CHECKING:
    from reconciler.usecases.apply import AuditCommit


def apply(
    planfile: Path = typer.Argument(
        None, help="A plan saved with `cloned plan --out`; without it, plan afresh and apply."
    ),
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
    target: list[str] = typer.Option([], "--target", help="Apply only ADDR and what it needs."),
    lock_timeout: float = typer.Option(
        0.0, "--lock-timeout", help="Seconds to wait for another apply to finish (default: 0)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    no_commit: bool = typer.Option(
        False, "--no-commit", help="Skip the audit commit (the next apply commits the files)."
    ),
) -> int:
    """Apply the plan: what policy allows, and what valid approvals allow.

    Gated changes without a valid approval get an approval request (listed by `cloned approvals
    list`; re-running never duplicates one); changes that policy forbids are reported. A saved
    PLANFILE is applied only if it still matches the desired and actual state exactly. Writes the
    state database, .cloned/cloned.lock and the audit log under .cloned/audit/, then makes the
    audit commit: one git commit of those files and nothing else (not your other staged or
    unstaged changes). It is skipped with --no-commit, when the Workspace sets
    git.auditCommits: false, and (with a warning) on a detached HEAD or mid-merge; the files
    then wait for the next apply's commit.

    Before the first change, apply checks what it needs afterwards (the audit key, that
    cloned.lock and .cloned/audit/ can be written, the committed audit files, that the state
    database holds only audited records) and refuses with nothing applied. If a later step
    fails anyway, it reports what was applied and exits 1.

    Exit codes: 0 converged; 3 approvals pending; 4 a change is forbidden or denied; 1 error.
    """
    from reconciler.cli.output import error_line, print_json
    from reconciler.usecases.apply import STATUS_WORDS
    from reconciler.usecases.apply import apply as run

    applied = run(
        path=path,
        planfile=planfile,
        targets=tuple(target),
        lock_timeout=lock_timeout,
        commit=not no_commit,
        progress=_progress if not as_json and sys.stderr.isatty() else None,
    )
    if as_json:
        print_json(applied.to_json())
        return int(applied.exit_code)
    result = applied.result
    for problem in result.ignored:
        say(f"Ignored approval record {problem.path}: {problem.message}", err=True)
    if result.recovered is not None:
        say(f"Recovered a stale workspace lock held by {result.recovered.describe()}")
    if not result.outcomes:
        say("No changes. The actual state matches the desired state.")
    for outcome in result.outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        request = (
            f" [request {outcome.request_id}]"
            if outcome.request_id and outcome.status != "applied"
            else ""
        )
        status = STATUS_WORDS[outcome.status]
        say(f"  {outcome.address} ({outcome.action}) {status}{detail}{request}")
    summary = result.summary()
    if result.error is not None:
        # What was applied stays applied (and recorded in the state database): say so.
        error_line(f"{result.error.describe()} (after the changes: {summary})")
        if result.error.hint:
            say(f"Hint: {result.error.hint}", err=True)
        return int(result.exit_code)
    if result.outcomes:
        say()
        say(f"Apply finished: {summary}.")
    _report_commit(result.audit_commit)
    if result.exit_code == ExitCode.APPROVALS_PENDING:
        say("Approve with: cloned approvals approve ID --key KEY, then run cloned apply again.")
    for row in applied.runs.runs if applied.runs is not None else ():
        say(f"Run {row.id} ({row.name}): {row.status}" + (f": {row.reason}" if row.reason else ""))
    return int(applied.exit_code)


def _progress(line: str) -> None:
    """A run's progress, on stderr."""
    say(line, err=True)


def _report_commit(made: AuditCommit | None) -> None:
    """One line on the audit commit: its id, or (on stderr) why there is none."""
    if made is None or made.status in ("unchanged", "disabled"):
        return
    if made.status == "committed" and made.commit is not None:
        say(f"Audit commit {made.commit[:12]}: the audit log and cloned.lock.")
        return
    say(
        f"Warning: no audit commit: {made.reason}. The audit files stay in .cloned/; the next "
        "apply commits them.",
        err=True,
    )
