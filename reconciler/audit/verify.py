"""`cloned audit verify`: check the whole log and name the first bad event.

Three sources are checked and cross-checked: the state database's chain (when there is one),
the committed segments (each event also compared with the database's copy), and the signed
checkpoints (signature, pinned key, the (seq, hash) each one covers, truncation). Every check
stops at its first problem; the report puts the problems in seq order, so the first one names
the earliest event that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.audit.chain import DATABASE, Chain, Finding, missing, verify_rows, verify_segments
from reconciler.audit.checkpoints import REL, check_checkpoints, load_checkpoints
from reconciler.audit.files import list_segments
from reconciler.state import audit_rows, meta
from reconciler.state.db import StateDB


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `verify`: counts, the head, and the problems found (first bad first)."""

    events: int
    exported: int
    checkpoints: int
    head: str | None
    database: bool
    problems: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Whether the whole log verified."""
        return not self.problems

    def summary(self) -> str:
        """The one-line verdict `cloned audit verify` prints on success."""
        head = f", head {self.head}" if self.head else ""
        text = f"Audit log verified: {self.events} events, {self.checkpoints} checkpoints{head}"
        if self.database and self.events > self.exported:
            text += f" ({self.events - self.exported} not yet exported)"
        return text

    def to_json(self) -> dict[str, Any]:
        """As `cloned audit verify --json` prints it."""
        return {
            "verified": self.ok,
            "events": self.events,
            "exported": self.exported,
            "checkpoints": self.checkpoints,
            "head": self.head,
            "database": self.database,
            "problems": [problem.to_json() for problem in self.problems],
        }


def verify(root: Path, db: StateDB | None) -> VerifyReport:
    """Check the database chain (if `db`), the committed segments and the checkpoints."""
    found: list[Finding] = []
    database, pinned, exported = _database(db, found) if db is not None else (None, None, 0)
    segments, strays = list_segments(root)
    found += [Finding(f"{rel}: not a segment file (FIRST-LAST.jsonl)", None, rel) for rel in strays]
    log = verify_segments(root, segments, database)
    lines, unreadable = load_checkpoints(root)
    firsts = (database.finding if database else None, log.finding, unreadable)
    found += [finding for finding in firsts if finding is not None]
    # An export killed between writing its segment and signing its checkpoint leaves committed
    # events past the last checkpoint that the database holds identically (verify_segments
    # compared them) and has not marked exported; the next export signs them. Only with the
    # database can that be told apart from an unsigned tail someone appended.
    interrupted = exported if database is not None and log.finding is None else None
    if interrupted is not None and interrupted >= log.end:
        interrupted = None
    if log.end and not lines and unreadable is None and interrupted != 0:
        found.append(Finding(f"the committed log has no checkpoints ({REL} is missing or empty)"))
    found += check_checkpoints(
        lines, pinned=pinned, log=log, database=database, unsigned_from=interrupted
    )
    found += _coverage(log, database, exported)
    head = (database if database is not None else log).hashes
    events = database.end if database is not None else log.end
    problems = _first_per_event(sorted(found, key=lambda f: (f.seq is None, f.seq or 0)))
    return VerifyReport(
        events=events,
        exported=log.end,
        checkpoints=len(lines),
        head=head[-1] if head and len(head) == events else None,
        database=database is not None,
        problems=tuple(problems),
    )


def _database(db: StateDB, found: list[Finding]) -> tuple[Chain, str | None, int]:
    connection = db.reader
    chain = verify_rows(audit_rows.scan(connection), lines=True)
    last = audit_rows.head(connection)
    chain.end = last[0] if last else 0
    pinned = meta.get_meta(connection, audit_rows.PUBLIC_KEY)
    value = meta.get_meta(connection, audit_rows.EXPORTED_SEQ) or "0"
    if not value.isdigit():
        found.append(Finding(f"{DATABASE}: {audit_rows.EXPORTED_SEQ} is not a number ({value!r})"))
        return chain, pinned, 0
    return chain, pinned, int(value)


def _coverage(log: Chain, database: Chain | None, exported: int) -> list[Finding]:
    """The committed log and the database must hold what the other says exists."""
    if database is None:
        return []
    found = []
    if exported > log.end:
        ends = f"the log ends at {log.end}" if log.end else "the committed log is empty"
        found.append(
            Finding(
                f"{missing(log.end + 1, exported)}: {ends} but the {DATABASE} exported up to "
                f"{exported}",
                log.end + 1,
            )
        )
    if log.end > database.end:
        found.append(
            Finding(
                f"{missing(database.end + 1, log.end)} from the {DATABASE}: it ends at "
                f"{database.end} but the segments hold up to {log.end}",
                database.end + 1,
            )
        )
    return found


def _first_per_event(findings: list[Finding]) -> list[Finding]:
    """One finding per event: two checks that trip over the same event say the same thing."""
    seen: set[int] = set()
    kept = []
    for finding in findings:
        if finding.seq is None or finding.seq not in seen:
            kept.append(finding)
        if finding.seq is not None:
            seen.add(finding.seq)
    return kept
