"""Reading events for display: from the state database, or from the committed segments.

A fresh clone has no state database; `cloned audit log` then shows the segments under
`.cloned/audit/`. Reading does not verify (that is `cloned audit verify`), but a line that is no
event at all is an error naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.audit.chain import parse_line
from reconciler.audit.event import Event
from reconciler.audit.files import list_segments, read_lines
from reconciler.audit.log import Since, events, matches
from reconciler.canonical import parse_json
from reconciler.errors import ClonedError
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class EventList:
    """Events to show, and where they came from."""

    events: list[Event]
    database: bool


def read_events(
    root: Path,
    *,
    since: Since | None = None,
    type: str | None = None,  # mirrors the --type option
    subject: str | None = None,
) -> EventList:
    """Matching events from the state database if there is one, else from the segments."""
    with StateDB.existing(root) as db:
        if db is not None:
            return EventList(events(db, since=since, type=type, subject=subject), database=True)
    found = [
        event
        for event in segment_events(root)
        if matches(event, since=since, type=type, subject=subject)
    ]
    return EventList(found, database=False)


def segment_events(root: Path) -> list[Event]:
    """Every event in the committed segments, in file and line order."""
    segments, _strays = list_segments(root)
    found: list[Event] = []
    for segment in segments:
        try:
            lines = read_lines(root / segment.rel)
        except (OSError, UnicodeDecodeError) as exc:
            raise ClonedError(f"{segment.rel}: cannot be read ({exc})") from None
        for number, text in enumerate(lines, 1):
            if isinstance(parse_line(text), str):
                raise ClonedError(
                    f"{segment.rel}:{number}: not an audit event",
                    hint="run `cloned audit verify` to check the log",
                )
            value = parse_json(text)
            found.append(Event(**value))
    return found
