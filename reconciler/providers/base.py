"""The provider protocol and the record-keeping provider the governance kinds share.

A provider knows, for its kind: what the actual state is (`read_actual`), how risky a change is
(`risk`), whether a change must replace rather than update (`requires_replace`), and how to make
a change real (`apply`, `delete`). Each `apply`/`delete` runs inside the engine's transaction,
together with the change's audit event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.plan.types import Action, Change, FieldDiff, Risk
from reconciler.state import resources as rows
from reconciler.state.db import Connection


@dataclass(frozen=True)
class ActualResource:
    """A resource as it actually is: the state the runtime enforces."""

    address: str
    kind: str
    name: str
    state: dict[str, Any]  # {"metadata": {...}, "spec": {...}}
    digest: str
    origin: str


@dataclass(frozen=True)
class ApplyContext:
    """What a provider may use while applying one change."""

    connection: Connection
    plan_id: str
    applied_at: str


class Provider(Protocol):
    """What the engine needs from each kind."""

    kind: str

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        """How risky this change is, before policy looks at it."""
        ...

    def requires_replace(self, diff: tuple[FieldDiff, ...]) -> bool:
        """True when the diff touches something that cannot change in place."""
        ...

    def apply(self, context: ApplyContext, change: Change) -> None:
        """Create or update the actual resource to match `change.proposed.after`."""
        ...

    def delete(self, context: ApplyContext, change: Change) -> None:
        """Remove the actual resource."""
        ...


class RecordProvider:
    """For kinds whose actual state is the applied record itself (policy, budgets, ...): the
    runtime enforces what is in the state database, never uncommitted YAML."""

    kind = ""

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        return "high" if action in ("delete", "replace") else "medium"

    def requires_replace(self, diff: tuple[FieldDiff, ...]) -> bool:
        return False

    def apply(self, context: ApplyContext, change: Change) -> None:
        proposed = change.proposed
        assert proposed.after is not None
        rows.put(
            context.connection,
            rows.Row(
                address=proposed.address,
                kind=proposed.kind,
                name=proposed.name,
                state=json.dumps(proposed.after, sort_keys=True),
                digest=change.after_digest,
                origin=proposed.origin,
                applied_at=context.applied_at,
                plan_id=context.plan_id,
            ),
        )

    def delete(self, context: ApplyContext, change: Change) -> None:
        rows.delete(context.connection, change.address)
