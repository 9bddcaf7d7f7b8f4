"""`drift` (and `plan --refresh-only`): where the actual state left what the last apply
recorded, apart from pending desired changes (engine/drift.py checks; this reports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ExitCode

if TYPE_CHECKING:
    from reconciler.engine.drift import Drifted


@dataclass(frozen=True)
class DriftChecked:
    """The drift found over the applied resources, and how many desired changes are pending
    beside it (None when the desired state does not validate)."""

    items: tuple[Drifted, ...]
    checked: int  # applied resources checked
    pending: int | None
    exit_on_drift: bool = True  # whether drift exits 2 (else 0: `plan --refresh-only`)

    @property
    def drifted(self) -> bool:
        return bool(self.items)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHANGES if self.drifted and self.exit_on_drift else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "checked": self.checked,
            "items": [item.to_json() for item in self.items],
            "pending_changes": self.pending,
            "exit_code": int(self.exit_code),
        }


def drift(*, path: Path, exit_on_drift: bool) -> DriftChecked:
    """Check the workspace containing `path` for drift; read-only. A `ClonedError` when there
    is no state database to check."""
    from reconciler.engine.drift import check
    from reconciler.load.files import find_root

    report, pending = check(find_root(path))
    return DriftChecked(report.items, report.checked, pending, exit_on_drift)
