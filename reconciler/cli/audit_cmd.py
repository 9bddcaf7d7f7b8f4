"""`cloned audit log` and `cloned audit verify`: show and check the tamper-evident audit log."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli import inert
from reconciler.cli.output import error_line, print_json, say

if TYPE_CHECKING:
    from reconciler.usecases.audit import Event

SUMMARY_DIFFS = 3  # changed fields named in a change event's summary line
SUMMARY_VALUE = 40  # characters of a value in a summary line; --long shows it whole
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

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
    long: bool = typer.Option(
        False, "--long", help="Show each event's number and whole payload instead of a summary."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object per line (the events' canonical form)."
    ),
) -> int:
    """Show audit events, oldest first.

    Reads the state database; in a fresh clone, where there is none, it reads the committed
    segments under .cloned/audit/ instead (and says so on stderr). Text output is one line per
    event: time, actor, type, subject and a short summary (`calls 100 -> 200`); --long shows
    the event number and the whole payload instead, and --json every field.

    Examples:

    \b
      cloned audit log --type approval           # every approval event
      cloned audit log --long --subject budget.daily
      cloned audit log --since 2026-01-31 --json # for scripts: one JSON object per line
    """
    from reconciler.usecases.audit import log as run

    result = run(path=path, since=since, type=type_, subject=subject)
    if not result.database:
        say("No state database here: showing the committed log in .cloned/audit/", err=True)
    if as_json:
        for line in result.lines():
            print(line)
        return int(result.exit_code)
    for line in _text_lines(result.events, long=long):
        say(line)
    return int(result.exit_code)


def _text_lines(events: Sequence[Event], *, long: bool) -> list[str]:
    """One line per event, columns aligned: time, actor, type, subject, then a summary; with
    `long`, the event number first and the whole payload last."""
    from reconciler.canonical import canonical_json

    rows = [[e.ts, _plain(e.actor), _plain(e.type), _plain(e.subject, long)] for e in events]
    if long:
        width = max((len(str(e.seq)) for e in events), default=0)
        rows = [[str(e.seq).rjust(width), *row] for e, row in zip(events, rows, strict=True)]
    columns = 5 if long else 4
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(columns)]
    lines = []
    for event, row in zip(events, rows, strict=True):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        if long:
            cells.append(canonical_json(event.payload).decode() if event.payload else "")
        else:
            cells.append(summary(event.type, event.payload))
        lines.append(inert.text("  ".join(cells).rstrip()))
    return lines


def _plain(value: str, long: bool = True) -> str:
    """A field as one visible word: quoted JSON when it is empty or has spaces; inert. Unless
    `long`, a digest (a plan id) is cut to 12 hex digits, as plans show it."""
    import json

    if not long and DIGEST.fullmatch(value):
        return value[:19]
    if value and " " not in value:
        return inert.text(value)
    return inert.text(json.dumps(value, ensure_ascii=False))


def summary(type_: str, payload: dict[str, Any]) -> str:
    """What an event says, in a few words: `calls 100 -> 200`, `request 1a2b3c4d5e6f: LGTM`."""
    get = payload.get
    if type_.startswith("change."):
        diff = get("diff")
        fields = len(diff) if isinstance(diff, list) else 0
        if get("action") in ("create", "delete"):
            said = [f"{get('action')}, {fields} field{'s' if fields != 1 else ''}"]
        else:
            said = [_diff_summary(diff)]
        if type_ == "change.failed" and get("error"):
            said.append(f"error: {_short(get('error'))}")
        if type_ == "change.denied" and get("rules"):
            said.append(f"by {_names(get('rules'))}")
        if get("approved_by"):
            said.append(f"approved by {_names(get('approved_by'))}")
        return "; ".join(part for part in said if part)
    if type_ == "approval.requested":
        return f"request {get('request')}: {get('action')}, {get('decision')}"
    if type_ in ("approval.granted", "approval.denied"):
        comment = f": {_short(get('comment'))}" if get("comment") else ""
        return f"request {get('request')}{comment}"
    if type_ == "approval.spent":
        return f"request {get('request')}: {get('approver')}'s approval used ({get('file')})"
    if type_ == "approval.superseded":
        then = f"by {get('by')}" if get("by") else _short(get("reason", ""))
        return f"request {get('request')} superseded {then}".rstrip()
    if type_ == "apply.started":
        return f"{get('changes')} change(s)"
    outcomes = get("outcomes")
    if type_ == "apply.finished" and isinstance(outcomes, dict):
        return ", ".join(f"{n} {status}" for status, n in outcomes.items())
    if type_ == "plan.saved":
        return f"saved to {_short(get('file'))}"
    if type_ == "drift.repaired":
        found, repairs = get("found") or [], get("repairs") or []
        return f"{len(found)} finding(s), {len(repairs)} repair(s)"
    if type_ == "lock.recovered":
        return f"from {_short(get('stale_holder'))}"
    return _connector_summary(type_, payload)


def _connector_summary(type_: str, payload: dict[str, Any]) -> str:
    """`registry 1.0.0 by acme, sha256:...`, `tampered: ...`: what the package events say."""
    get = payload.get
    if type_ == "connector.installed":
        return f"{get('source')} {get('version')} by {get('publisher')}, {_short(get('digest'))}"
    if type_ == "connector.refused":
        return f"{get('reason')}: {_short(get('error'))}"
    if type_ == "connector.restored":
        return f"from archive {get('archive')}"
    if type_ == "connectors.verified":
        return f"{get('failed')} of {get('checked')} failed verification"
    if type_ == "archive.purged":
        return f"{len(get('archives') or [])} archive(s) purged"
    if type_ in ("vault.secret_set", "vault.secret_deleted"):
        return f"version {get('version')} in the {get('provider')} vault"
    return _short(payload) if payload else ""


def _diff_summary(diff: Any) -> str:
    """`calls 100 -> 200, period "month" -> "day"`: the first few changed fields by name."""
    if not isinstance(diff, list) or not diff:
        return ""
    parts = []
    for field in diff[:SUMMARY_DIFFS]:
        if not isinstance(field, dict):
            continue
        name = str(field.get("path", "")).rsplit(".", 1)[-1]
        if "before" in field and "after" in field:
            parts.append(f"{name} {_short(field['before'])} -> {_short(field['after'])}")
        elif "after" in field:
            parts.append(f"+{name} {_short(field['after'])}")
        else:
            parts.append(f"-{name}")
    more = len(diff) - SUMMARY_DIFFS
    return ", ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _names(items: Any) -> str:
    return ", ".join(str(item) for item in items) if isinstance(items, list) else str(items)


def _short(item: Any) -> str:
    """A value as compact JSON (a string as it is), cut to SUMMARY_VALUE characters."""
    import json

    shown = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, sort_keys=True)
    if len(shown) <= SUMMARY_VALUE:
        return shown
    return f"{shown[: SUMMARY_VALUE - 1]}… (+{len(shown) - SUMMARY_VALUE + 1} chars, see --long)"


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
    from reconciler.usecases.audit import verify as run

    result = run(path=path)
    if as_json:
        print_json(result.to_json())
    elif result.ok:
        if not result.report.database:
            say("No state database here: verified the committed log only", err=True)
        say(result.report.summary())
    else:
        error_line(result.problems[0].message)
        for problem in result.problems[1:]:
            say(f"Also: {problem.message}", err=True)
    return int(result.exit_code)
