"""The provider protocol and the record-keeping provider the governance kinds share.

A provider knows, for its kind: what the actual state is (`read_actual`), what a desired
resource will install beyond its YAML (`pin`: a connector's package), whether what runs is
well (`health`), how risky a change is (`risk`), whether a change must replace rather than
update (`requires_replace`), and how to make a change real (`apply`, `delete`) or put an audited
state back (`restore`, for drift repair). Providers are the only writers of actual state; each
write runs inside the engine's transaction, together with its audit event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler.egress.rules import PackEgress
from reconciler.load.resources import LoadedResource
from reconciler.plan.types import Action, Change, FieldDiff, Risk
from reconciler.state import resources as rows
from reconciler.state.db import Connection, StateDB


@dataclass(frozen=True)
class ActualResource:
    """A resource as it actually is: the state the runtime enforces."""

    address: str
    kind: str
    name: str
    state: dict[str, Any]  # {"metadata": {...}, "spec": {...}}
    digest: str
    origin: str

    @classmethod
    def of_row(cls, row: rows.Row) -> ActualResource:
        """The resource a state-database row records."""
        return cls(row.address, row.kind, row.name, json.loads(row.state), row.digest, row.origin)


@dataclass(frozen=True)
class Health:
    """Whether an applied resource is doing its job (`cloned connectors show`, the gateway)."""

    status: Literal["ok", "degraded", "down"]
    detail: str


@dataclass(frozen=True)
class ApplyContext:
    """What a provider may use while applying one change."""

    connection: Connection
    plan_id: str
    applied_at: str
    root: Path | None = None  # the repository (providers that install files need it)
    fresh: frozenset[str] = frozenset()
    """The registry pins (`pins.fresh_key`: registry, target and digest) this apply's own
    plan resolved from a registry it just asked (an install of one of them need not ask
    again; anything else is asked again)."""
    registry_denies: tuple[PackEgress, ...] = ()
    """The active packs' `denyHosts`, which registry downloads obey (`ActivePolicy`)."""


@dataclass(frozen=True)
class PinContext:
    """What a provider may read to pin what a desired resource will install (`pin`): the
    repository at the planned revision (None: the working tree), the desired Registry specs,
    and whether the user asked to look again at what is already pinned (`plan --refresh`)."""

    root: Path
    revision: str | None
    registries: Mapping[str, Mapping[str, Any]]
    refresh: bool = False
    fresh: set[str] = field(default_factory=set)
    """Filled by pinning: the `pins.fresh_key`s of pins resolved from a registry asked now."""
    listings: Mapping[str, Any] = field(default_factory=dict)
    """address -> the last tool listing seen (`state.listings.Listing`), from the state
    database (empty in a fresh clone, which plans against `cloned.lock`)."""
    registry_denies: tuple[PackEgress, ...] = ()
    """The active packs' `denyHosts`, which registry downloads obey (`ActivePolicy`)."""
    pipelines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The desired Pipelines' states by name (`{metadata, spec}`): what a Run executes."""


class Provider(Protocol):
    """What the engine needs from each kind."""

    kind: str

    def read_actual(self, db: StateDB) -> dict[str, ActualResource]:
        """Every applied resource of this kind, by address."""
        ...

    def pin(
        self, resource: LoadedResource, applied: ActualResource | None, context: PinContext
    ) -> dict[str, Any] | None:
        """What this desired resource will install, beyond its YAML (a package's source,
        digest and what it declares), or None for kinds that install nothing. The result is
        part of the planned state, so a changed package is a plan change that approvals bind
        to. Reuses `applied`'s pin when nothing it depends on changed (plans stay offline)."""
        ...

    def pin_tools(
        self,
        resource: LoadedResource,
        applied: ActualResource | None,
        package: Mapping[str, Any],
        context: PinContext,
    ) -> dict[str, Any] | None:
        """The tool definitions the planned `package` will serve (`tools`), or None when no
        listing of it is known yet (apply lists it after installing). Only Connectors."""
        ...

    def derive(self, resource: LoadedResource, context: PinContext) -> dict[str, Any]:
        """Parts of the planned state derived from other desired resources (a Run's
        `execution`: the digests of what it executes); empty for most kinds."""
        ...

    def health(self, root: Path, resource: ActualResource) -> Health:
        """Whether this applied resource works (reads only; never starts anything). Not part
        of a plan: `cloned connectors verify` and the runtime before a start ask it."""
        ...

    def damaged(self, root: Path, db: StateDB, *, refresh: bool) -> dict[str, str]:
        """address -> what is wrong, for applied resources whose installed files are not what
        was installed; a plan repairs them. Cheap checks only, unless `refresh` (re-hash)."""
        ...

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

    def restore(self, context: ApplyContext, resource: ActualResource) -> None:
        """Put back an applied state the audit log vouches for (drift repair)."""
        ...

    def remove(self, context: ApplyContext, address: str) -> None:
        """Take away an actual resource that no audit event applied (drift repair)."""
        ...


class RecordProvider:
    """For kinds whose actual state is the applied record itself (policy, budgets, ...): the
    runtime enforces what is in the state database, never uncommitted YAML."""

    kind = ""

    def read_actual(self, db: StateDB) -> dict[str, ActualResource]:
        return {row.address: ActualResource.of_row(row) for row in rows.of_kind(db, self.kind)}

    def pin(
        self, resource: LoadedResource, applied: ActualResource | None, context: PinContext
    ) -> dict[str, Any] | None:
        return None

    def pin_tools(
        self,
        resource: LoadedResource,
        applied: ActualResource | None,
        package: Mapping[str, Any],
        context: PinContext,
    ) -> dict[str, Any] | None:
        return None

    def derive(self, resource: LoadedResource, context: PinContext) -> dict[str, Any]:
        return {}

    def damaged(self, root: Path, db: StateDB, *, refresh: bool) -> dict[str, str]:
        return {}  # nothing installed: the applied record is all there is

    def health(self, root: Path, resource: ActualResource) -> Health:
        # Nothing runs: the runtime enforces the record, so an applied record is all there is.
        return Health("ok", "enforced from the applied record")

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        return "high" if action in ("delete", "replace") else "medium"

    def requires_replace(self, diff: tuple[FieldDiff, ...]) -> bool:
        return False

    def apply(self, context: ApplyContext, change: Change) -> None:
        proposed = change.proposed
        assert proposed.after is not None
        applied = ActualResource(
            proposed.address,
            proposed.kind,
            proposed.name,
            proposed.after,
            change.after_digest,
            proposed.origin,
        )
        self.restore(context, applied)

    def delete(self, context: ApplyContext, change: Change) -> None:
        self.remove(context, change.address)

    def remove(self, context: ApplyContext, address: str) -> None:
        rows.delete(context.connection, address)

    def restore(self, context: ApplyContext, resource: ActualResource) -> None:
        rows.put(
            context.connection,
            rows.Row(
                address=resource.address,
                kind=resource.kind,
                name=resource.name,
                state=json.dumps(resource.state, sort_keys=True),
                digest=resource.digest,
                origin=resource.origin,
                applied_at=context.applied_at,
                plan_id=context.plan_id,
            ),
        )
