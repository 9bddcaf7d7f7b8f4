"""`cloned audit log` and `cloned audit verify`: show and check the tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import error_line, print_json
from reconciler.errors import ExitCode

if TYPE_CHECKING:
    from reconciler.audit import Event

app = typer.Typer(
    help="Show and verify the hash-chained audit log of everything Cloned did.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PATH_HELP = (
    "A folder inside the repository (default: the current one); Cloned finds .cloned/ there or "
    "in a folder above."
)


@app.command("log")
def log(
    path: Path = typer.Argument(Path(), help=PATH_HELP, show_default=False),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="SEQ|TIME",
        help="Only events from this event number on, or stamped at or after this date or time "
        "(2026-01-31, 2026-01-31T12:00:00Z).",
    ),
    type_: str | None = typer.Option(
        None,
        "--type",
        metavar="TYPE",
        help="Only events of this type, or of every type under a prefix (`approval` matches "
        "approval.granted).",
    ),
    subject: str | None = typer.Option(
        None, "--subject", metavar="ADDR", help="Only events about this subject (an address)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object per line (the events' canonical form)."
    ),
) -> int:
    """Show audit events, oldest first.

    Reads the state database; in a fresh clone, where there is none, it reads the committed
    segments under .cloned/audit/ instead (and says so on stderr). Text output is one line per
    event: seq, time, actor, type, subject and the payload.

    Examples:

    \b
      cloned audit log --type approval           # every approval event
      cloned audit log --since 2026-01-31 --json # for scripts: one JSON object per line
    """
    from reconciler.audit.log import parse_since
    from reconciler.audit.read import read_events
    from reconciler.load.files import find_root

    root = find_root(path)
    found = read_events(
        root, since=parse_since(since) if since else None, type=type_, subject=subject
    )
    if not found.database:
        note = "No state database here: showing the committed log in .cloned/audit/"
        print(note, file=sys.stderr)
    for line in [e.line() for e in found.events] if as_json else _text_lines(found.events):
        print(line)
    return int(ExitCode.OK)


def _text_lines(events: list[Event]) -> list[str]:
    """One line per event, columns aligned: seq, time, actor, type, subject, payload."""
    from reconciler.canonical import canonical_json

    rows = [[str(e.seq), e.ts, _plain(e.actor), _plain(e.type), _plain(e.subject)] for e in events]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(5)]
    lines = []
    for event, row in zip(events, rows, strict=True):
        cells = [
            row[0].rjust(widths[0]),
            *(cell.ljust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
        ]
        if event.payload:
            cells.append(canonical_json(event.payload).decode())
        lines.append("  ".join(cells).rstrip())
    return lines


def _plain(value: str) -> str:
    """A field as one visible word: quoted JSON when it is empty, has spaces or control codes."""
    import json

    if value and value.isprintable() and " " not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


@app.command("verify")
def verify(
    path: Path = typer.Argument(Path(), help=PATH_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for CI)."),
) -> int:
    """Check the whole audit log and name the first bad event.

    Checks the state database's hash chain, the committed segments under .cloned/audit/ (each
    event against the database's copy) and the signed checkpoints (signature, the workspace's
    audit key, and that no event they cover was changed, reordered or removed). Exits 0 when
    everything verifies, 1 otherwise. Without a state database (a fresh clone) it checks the
    committed log alone.

    Example:

    \b
      cloned audit verify
      Audit log verified: 42 events, 3 checkpoints, head sha256:9f2c...
    """
    from reconciler.audit.verify import verify as verify_log
    from reconciler.load.files import find_root
    from reconciler.state.db import StateDB

    root = find_root(path)
    db = StateDB.open(root, create=False)
    try:
        report = verify_log(root, db)
    finally:
        if db is not None:
            db.close()
    if as_json:
        print_json({"root": str(root), **report.to_json()})
    elif report.ok:
        if db is None:
            print("No state database here: verified the committed log only", file=sys.stderr)
        print(report.summary())
    else:
        error_line(report.problems[0].message)
        for problem in report.problems[1:]:
            print(f"Also: {problem.message}", file=sys.stderr)
    return int(ExitCode.OK if report.ok else ExitCode.ERROR)
