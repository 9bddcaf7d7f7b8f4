"""The engine's handle on the audit log: who is acting, and the redactor every payload passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.redact import Redactor
from reconciler.state.db import Connection, StateDB


class Journal:
    """Appends audit events inside the caller's transaction; exports segments afterwards."""

    def __init__(self, actor: str, redactor: Redactor) -> None:
        self.actor = actor
        self.redactor = redactor

    def record(
        self, connection: Connection, type: str, subject: str, payload: dict[str, Any]
    ) -> None:
        """Append one event in the transaction that performs the step it describes."""
        from reconciler.audit.log import append

        append(
            connection,
            actor=self.actor,
            type=type,
            subject=subject,
            payload=payload,
            redactor=self.redactor,
        )

    def export(self, db: StateDB, root: Path) -> tuple[str, ...]:
        """Write new events to `.cloned/audit/` with a signed checkpoint; the files written."""
        from reconciler.audit.export import export

        result = export(db, root)
        return tuple(str(path) for path in result.files)
