"""The plan's JSON form (`cloned plan --json`, `--out FILE`, `cloned show`) and saved plans,
read back into the typed plan document (reconciler/plan/document.py).

A saved plan is evidence, not instructions: `cloned apply FILE` re-plans from the desired and
actual state and applies only if the new plan has the same id, so nothing in the file (which a
redactor may have masked) is ever applied from the file itself. Loading a plan file checks that
its id is the id of what it shows (`plan_id_of`), so `show` never renders an edited plan as the
one Cloned wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.engine.journal import Journal
from reconciler.engine.planner import Plan
from reconciler.engine.session import Session
from reconciler.errors import ClonedError
from reconciler.plan.document import MalformedPlan, PlanDocument
from reconciler.plan.types import PLAN_FORMAT_VERSION
from reconciler.redact import Redactor
from reconciler.state.db import StateDB

MAX_PLAN_BYTES = 64 * 1024 * 1024


def plan_json(plan: Plan, *, created_at: str, redactor: Redactor) -> dict[str, Any]:
    """The stable, versioned JSON form of a plan (schemas/plan.schema.json), redacted."""
    content = plan.content_json()
    payload = {
        "format_version": content.pop("format_version"),
        "plan_id": plan.plan_id,
        "created_at": created_at,
        "generated_by": f"cloned {__version__}",
        **content,
    }
    redacted: dict[str, Any] = redactor.data(payload)
    return redacted


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from a file: the typed document, and its JSON exactly as read (what
    `cloned show --json` prints back)."""

    path: Path
    document: PlanDocument
    data: dict[str, Any]

    @property
    def plan_id(self) -> str:
        return self.document.plan_id

    @property
    def targets(self) -> tuple[str, ...]:
        return self.document.targets


def save(path: Path, document: PlanDocument) -> None:
    """Write a plan file atomically."""
    text = json.dumps(document.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise ClonedError(f"--out: cannot write {path}: {exc.strerror or exc}") from None


def load(path: Path) -> SavedPlan:
    """Read a saved plan into its typed document; a clear error when it is not one."""
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise ClonedError(f"{path}: larger than {MAX_PLAN_BYTES:,} bytes; not a plan file")
        data = parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClonedError(f"{path}: no such plan file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ClonedError(f"{path}: not a Cloned plan file ({exc})") from None
    required = ("format_version", "plan_id", "changes", "desired_resources", "actual_resources")
    if not isinstance(data, dict) or any(key not in data for key in required):
        raise ClonedError(f"{path}: not a Cloned plan file (fields missing)")
    if data["format_version"] != PLAN_FORMAT_VERSION:
        raise ClonedError(
            f"{path}: plan format_version {data['format_version']!r} is not supported "
            f"(this Cloned writes {PLAN_FORMAT_VERSION})"
        )
    try:
        document = PlanDocument.from_json(data)
    except MalformedPlan as exc:
        raise ClonedError(f"{path}: not a Cloned plan file ({exc})") from None
    if document.content_id != document.plan_id:
        raise ClonedError(
            f"{path}: not the plan Cloned wrote (its content does not match its id); "
            f"run cloned plan --out {path} again"
        )
    return SavedPlan(path, document, data)


def stale_reasons(saved: SavedPlan, current: Plan) -> list[str]:
    """What changed between a saved plan and a fresh plan of the same workspace."""
    reasons = []
    for label, before, after in (
        ("desired state", saved.document.desired_resources, current.desired_resources),
        ("actual state", saved.document.actual_resources, current.actual_resources),
    ):
        changed = _differences(before, after)
        if changed:
            reasons.append(f"the {label} changed since the plan was made ({', '.join(changed)})")
    if not reasons:
        moved = _moved(saved.document, current)
        if moved:
            reasons.append(
                f"the desired resources moved in their files since the plan was made "
                f"({', '.join(moved)})"
            )
        else:
            reasons.append("the policy decisions changed since the plan was made")
    return reasons


def _moved(document: PlanDocument, current: Plan) -> list[str]:
    """Changes whose declaration moved (same content, another file or line): the plan shows
    where each change is declared, so its id covers that."""
    before = {change.address: change.origin for change in document.changes}
    return [
        f"{change.address} now at {change.proposed.origin}"
        for change in current.changes
        if before.get(change.address, change.proposed.origin) != change.proposed.origin
    ]


def _differences(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    found = []
    for address in sorted(before.keys() | after.keys()):
        if address not in after:
            found.append(f"{address} removed")
        elif address not in before:
            found.append(f"{address} added")
        elif before[address] != after[address]:
            found.append(f"{address} modified")
    return found


def record_saved(root: Path, session: Session, document: PlanDocument, path: Path) -> bool:
    """Audit that a plan was saved for review (its id, file and what it would change), in the
    state database at `root`; False when there is none to record it in."""
    with StateDB.existing(root) as db:
        if db is None:
            return False
        with db.transaction() as connection:
            Journal(session.actor, session.redactor).record(
                connection,
                "plan.saved",
                document.plan_id,
                {"file": str(path), "summary": document.summary.to_json()},
            )
    return True
