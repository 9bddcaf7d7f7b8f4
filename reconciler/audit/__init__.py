"""The tamper-evident audit log (SPEC section 5, specs/audit.md).

Flow: the apply engine records each step with `append()` inside the step's state transaction;
after apply, `export()` copies new events into a committed segment under `.cloned/audit/` and
signs a checkpoint of the chain head; `verify()` checks the database, the segments and the
checkpoints against each other and names the first bad event. The use cases
`reconciler.usecases.audit.log|verify` (`cloned audit log|verify`) are on top. Sits above the
state store, below the use cases and the apply engine.
"""

from __future__ import annotations

from reconciler.audit.event import GENESIS, Event
from reconciler.audit.export import ExportResult, export
from reconciler.audit.log import append, events, parse_since
from reconciler.audit.signing import Signer, workspace_signer
from reconciler.audit.verify import VerifyReport, verify

__all__ = [
    "GENESIS",
    "Event",
    "ExportResult",
    "Signer",
    "VerifyReport",
    "append",
    "events",
    "export",
    "parse_since",
    "verify",
    "workspace_signer",
]
