"""`cloned reconcile`: the GitOps loop. Parses the flags, stops on SIGINT/SIGTERM and renders
the loop's events as log lines; the loop runs through `reconciler.usecases.reconcile`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli import inert
from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.usecases.reconcile import CycleRecord, LogEvent, LoopStatus, Mode

LOG_FORMATS = ("text", "json")


def reconcile(
    path: Path = typer.Argument(
        Path("."), help="A folder inside the repository (default: here).", show_default=False
    ),
    once: bool = typer.Option(False, "--once", help="Run one cycle and exit with its code."),
    watch: bool = typer.Option(
        False, "--watch", help="Run a cycle whenever .cloned/ or the checked-out branch changes."
    ),
    interval: float | None = typer.Option(
        None, "--interval", metavar="SECONDS", help="Check for new commits every SECONDS."
    ),
    pull: str | None = typer.Option(
        None,
        "--pull",
        metavar="REMOTE",
        help="With --interval or --once: fetch the checked-out branch from REMOTE and "
        "fast-forward to it first.",
    ),
    push: bool = typer.Option(
        False,
        "--push",
        help="With --pull: push the loop's audit commits back to REMOTE (else they stay local, "
        "replayed on top of each new remote commit).",
    ),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Apply uncommitted .cloned/ edits instead of skipping."
    ),
    self_heal: bool = typer.Option(False, "--self-heal", help="Repair drift before applying."),
    no_commit: bool = typer.Option(False, "--no-commit", help="Make no audit commits."),
    log_format: str = typer.Option(
        "text", "--log-format", metavar="text|json", help="Log lines as text or JSON."
    ),
    debounce_ms: int = typer.Option(
        50, "--debounce-ms", metavar="N", help="--watch: group file events for up to N ms."
    ),
    max_backoff: float = typer.Option(
        300.0, "--max-backoff", metavar="S", help="Longest wait before retrying after errors."
    ),
    lock_timeout: float = typer.Option(
        0.0, "--lock-timeout", metavar="S", help="Seconds to wait for another apply's lock."
    ),
    status: bool = typer.Option(
        False, "--status", help="Print what the last reconcile here did, and exit."
    ),
    as_json: bool = typer.Option(False, "--json", help="With --status: print it as JSON."),
) -> int:
    """Reconcile continuously: apply each new commit of .cloned/, the GitOps way.

    A cycle applies the desired state committed at HEAD, as `cloned apply` does: what policy
    allows is applied, gated changes get approval requests, forbidden ones are reported, and
    the audit commit is made (not with --no-commit). Uncommitted edits to .cloned/ are reported
    and the cycle is skipped, unless --allow-dirty. Drift (`cloned drift`) is reported; with
    --self-heal it is repaired first.

    Choose one mode. --once runs one cycle. --watch runs one, then another whenever files under
    .cloned/ change or the branch moves (a commit, checkout or merge), after grouping events for
    --debounce-ms. --interval SECONDS checks every SECONDS, fetching and fast-forwarding the
    branch first with --pull REMOTE. A loop runs a cycle only when HEAD, the uncommitted
    .cloned/ edits or the approval records changed since the last one (its own audit commit
    does not count); between cycles it looks for drift (every tick with --interval, every 30 s
    with --watch). With --pull, the loop's own audit commits are replayed on top of each new
    remote commit (any other divergence is an error); --push sends them back to REMOTE.

    An error (invalid YAML, a held lock, a failed fetch) is logged and never stops the loop: the
    cycle is retried after 1 s, then 2, 4, ... up to --max-backoff; a new commit runs at once.
    SIGINT or SIGTERM ends the loop after the current cycle (exit 0); a second one at once.

    One log line per event on stdout: started, watching, pulled, skipped, drift, healed, cycle,
    error, stopped. --log-format json prints one JSON object per line, keys ts, event, cycle,
    then the event's own. After every cycle the loop writes .cloned/state/reconcile.json;
    --status prints it and whether that process still runs.

    Exit codes: --once: 0 converged; 3 approvals pending; 4 a change is forbidden or denied;
    1 error or skipped (uncommitted edits). A loop exits 0 when stopped; 1 if it cannot start.
    --status: 0, or 1 when no reconcile ran here.

    Examples:

    \b
      cloned reconcile --once
      cloned reconcile --watch --log-format json
      cloned reconcile --interval 60 --pull origin --push
      cloned reconcile --once --self-heal
      cloned reconcile --status
    """
    from reconciler.usecases import reconcile as usecase

    if status:
        if once or watch or interval is not None:
            raise UsageError("--status: cannot be combined with --once, --watch or --interval")
        return _show_status(usecase.status(path=path), as_json=as_json)
    mode = _mode(once=once, watch=watch, interval=interval)
    if log_format not in LOG_FORMATS:
        raise UsageError(f"--log-format: must be text or json (got {log_format!r})")
    if as_json:
        raise UsageError("--json: only with --status (use --log-format json for the loop's log)")
    printer = _json_line if log_format == "json" else _text_line
    with _stop_on_signals() as stopper:
        ran = usecase.reconcile(
            path=path,
            mode=mode,
            emit=lambda event: print(printer(event), flush=True),
            stopper=stopper,
            interval=interval,
            pull=pull,
            push=push,
            allow_dirty=allow_dirty,
            self_heal=self_heal,
            commit=not no_commit,
            debounce_ms=debounce_ms,
            max_backoff=max_backoff,
            lock_timeout=lock_timeout,
        )
    return int(ran.exit_code)


def _mode(*, once: bool, watch: bool, interval: float | None) -> Mode:
    chosen = [flag for flag, on in (("--once", once), ("--watch", watch)) if on]
    if interval is not None:
        chosen.append("--interval")
    if len(chosen) != 1:
        given = f" (got {' and '.join(chosen)})" if chosen else ""
        raise UsageError(f"choose exactly one of --once, --watch or --interval SECONDS{given}")
    return "once" if once else "watch" if watch else "interval"


# --- Log lines -------------------------------------------------------------------------------


def _json_line(event: LogEvent) -> str:
    return json.dumps(event.to_json(), sort_keys=False)


_COMMIT = re.compile(r"[0-9a-f]{40}")
_BARE = re.compile(r"[^\s\"=]+")


def _text_line(event: LogEvent) -> str:
    """`TS event=NAME cycle=N key=value ...`: logfmt, commits shortened, counts inline."""
    parts = [event.ts, f"event={event.event}", f"cycle={event.cycle}"]
    for key, value in event.details.items():
        if key == "outcomes":
            parts.append(f"changes={sum(value.values())}")
            parts.extend(f"{status}={count}" for status, count in value.items())
        elif value is not None and value != []:
            parts.append(f"{key}={_text_value(value)}")
    return inert.text(" ".join(parts))


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        items = [_item(item) for item in value]
        joined = ("; " if any(" " in item for item in items) else ",").join(items)
        return _text_value(joined)
    text = str(value)
    if _COMMIT.fullmatch(text):
        return text[:12]
    return text if _BARE.fullmatch(text) else json.dumps(text)


def _item(item: Any) -> str:
    """A drift finding or repair as `address:kind`; anything else as itself."""
    if isinstance(item, dict) and "address" in item:
        return f"{item['address']}:{item.get('kind') or item.get('action')}"
    return str(item)


# --- Stopping --------------------------------------------------------------------------------


class _Stopper:
    """Set by the first SIGINT or SIGTERM; ends the loop's waits at once. A self-pipe rather
    than a threading.Event, whose lock the signal handler could deadlock on."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.reason: str | None = None

    def stop(self, reason: str) -> None:
        self.reason = reason
        with contextlib.suppress(OSError):
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self.reason is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if stopped; whether stopped."""
        if not self.is_set():
            select.select([self._read], [], [], max(seconds, 0.0))
        return self.is_set()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Stopper]:
    """The first SIGINT or SIGTERM lets the current cycle finish; a second one interrupts."""
    stopper = _Stopper()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopper.is_set():
            raise KeyboardInterrupt
        stopper.stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopper
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(stopper._read)
        os.close(stopper._write)


# --- --status --------------------------------------------------------------------------------


def _show_status(found: LoopStatus, *, as_json: bool) -> int:
    from reconciler.cli.output import print_json, say

    if as_json:
        print_json(found.to_json())
        return 0
    for line in _status_lines(found):
        say(line)
    return 0


def _status_lines(found: LoopStatus) -> list[str]:
    status = found.record
    where = f"pid {status.pid} on {status.host}"
    if status.state == "stopped":
        state = "stopped"
    elif found.alive is False:
        state = "not running (the process is gone; it did not stop cleanly)"
    elif found.alive is None:
        state = "running on another host (cannot check the process)"
    else:
        state = "running"
    lines = [
        f"Reconcile ({status.mode}, {where}): {state}.",
        f"Started {status.started_at}, updated {status.updated_at}: "
        f"{status.cycles} cycle(s), {status.consecutive_errors} consecutive error(s).",
    ]
    if status.last is not None:
        lines.append(_last_line(status.last))
    if status.drift:
        found_items = ", ".join(f"{item.address}:{item.kind}" for item in status.drift)
        lines.append(f"Drift: {len(status.drift)} finding(s): {found_items}.")
    if status.consecutive_errors:
        lines.append(f"Next retry after {status.next_backoff:g} s.")
    return lines


def _last_line(last: CycleRecord) -> str:
    head = (last.head or "none")[:12]
    said = f"Last cycle #{last.cycle} at {last.at} ({last.trigger}, HEAD {head})"
    if last.error:
        return f"{said}: error: {last.error}"
    if last.skipped:
        return f"{said}: skipped, uncommitted changes: {', '.join(last.dirty)}"
    from reconciler.usecases.apply import describe_counts

    summary = describe_counts(dict(last.outcomes))
    made = last.audit_commit
    commit = f"; audit commit {made.commit[:12]}" if made is not None and made.commit else ""
    return f"{said}: {summary or 'no changes'} (exit {last.exit_code}){commit}."
