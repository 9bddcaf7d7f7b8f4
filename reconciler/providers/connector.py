"""Connector: an MCP server installed from a source that proves what it is (SPEC section 6).

`pin` asks the packages layer what the desired Connector will install, so the plan shows and
approvals bind to the exact package; `apply` installs exactly that (verified, stored read-only
by content) and records the install beside the resource, in one transaction with its audit
event; `delete` archives the package and the connector's data before anything is removed;
`health` re-hashes what is installed. A disabled connector stays installed and never starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.errors import ClonedError
from reconciler.load.resources import LoadedResource
from reconciler.plan.types import Action, Change, FieldDiff, Risk
from reconciler.providers.base import (
    ActualResource,
    ApplyContext,
    Health,
    PinContext,
    RecordProvider,
)
from reconciler.state import installs, listings
from reconciler.state import resources as rows
from reconciler.state.db import StateDB

WIDENING = ("package.declared.tools", "package.declared.egress_hosts", "package.declared.secrets")


class ConnectorProvider(RecordProvider):
    kind = "Connector"

    def pin(
        self, resource: LoadedResource, applied: ActualResource | None, context: PinContext
    ) -> dict[str, Any] | None:
        from reconciler.packages.pins import ConnectorView, PinRequest, pin

        request = PinRequest(
            name=resource.name,
            spec=ConnectorView.of(resource.spec),
            origin=resource.origin,
            applied=applied.state if applied is not None else None,
            root=context.root,
            revision=context.revision,
            registries=context.registries,
            refresh=context.refresh,
            fresh=context.fresh,
            registry_denies=context.registry_denies,
        )
        return pin(request)

    def pin_tools(
        self,
        resource: LoadedResource,
        applied: ActualResource | None,
        package: Mapping[str, Any],
        context: PinContext,
    ) -> dict[str, Any] | None:
        # The last listing seen of exactly this package is what the plan pins (a new install
        # listed by apply, or a live listing that differed: a re-pin for review); otherwise the
        # applied pins carry over, and apply lists a new package after installing it.
        from reconciler.runtime.definitions import ListingRefused, tools_block

        listing = context.listings.get(resource.address)
        if listing is not None and listing.package_digest == package.get("digest"):
            try:
                return tools_block(listing.tools, where=resource.address)
            except ListingRefused:
                pass  # recorded before a check tightened: list it again at apply
        if applied is not None and isinstance(applied.state.get("tools"), dict):
            return dict(applied.state["tools"])
        return None

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action in ("delete", "replace"):
            return "high"
        if action == "create":
            return "medium"
        touched = {d.path for d in diff}
        if touched & {"spec.publisher", "package.digest", "spec.source"} or any(
            d.path.startswith(WIDENING) or d.path.startswith("tools.pins.") for d in diff
        ):
            return "high"
        return "medium"

    def apply(self, context: ApplyContext, change: Change) -> None:
        from reconciler.packages.install import install
        from reconciler.packages.pins import fresh_key

        after = change.proposed.after
        assert after is not None and context.root is not None
        package = after.get("package")
        if not isinstance(package, dict):
            raise ClonedError(f"{change.address}: the plan pinned no package; plan again")
        previous = installs.of(context.connection, change.address)
        before = change.proposed.before or {}
        if previous is not None and before.get("package") == package and "installed" not in before:
            super().apply(context, change)  # the same package, installed and whole: record only
            return
        installed = install(
            root=context.root,
            name=change.proposed.name,
            package=package,
            at=context.applied_at,
            trusted_envs=lambda: installs.env_digests(context.connection),
            fresh=fresh_key(package) in context.fresh,
            registry_denies=context.registry_denies,
        )
        super().apply(context, change)
        installs.put(
            context.connection,
            installs.Install(change.address, installed.record, context.applied_at, True),
        )
        if previous is not None and previous.record.get("tree") != installed.tree:
            _release(context, previous.record.get("tree"))

    def delete(self, context: ApplyContext, change: Change) -> None:
        before = change.proposed.before
        assert before is not None
        self._archive(context, change.address, change.proposed.name, before)

    def remove(self, context: ApplyContext, address: str) -> None:
        # Drift repair takes away a connector no audit event applied: archived all the same.
        row = rows.get(context.connection, address)
        state = json.loads(row.state) if row is not None else {}
        self._archive(context, address, address.split(".", 1)[1], state)

    def _archive(
        self, context: ApplyContext, address: str, name: str, state: dict[str, Any]
    ) -> None:
        from reconciler.packages.retention import archive_connector

        assert context.root is not None
        record = installs.of(context.connection, address)
        archive_connector(
            root=context.root,
            name=name,
            state=state,
            install=record.record if record is not None else None,
            at=context.applied_at,
            plan_id=context.plan_id,
        )
        # The tool listing stays: declared again with the same package, the plan pins it, so
        # the reviewer of the new create reads its definitions (a listing is of one digest).
        installs.delete(context.connection, address)
        super().remove(context, address)
        if record is not None:
            _release(context, record.record.get("tree"))

    def damaged(self, root: Path, db: StateDB, *, refresh: bool) -> dict[str, str]:
        from reconciler.packages.install import missing, store_of, verify

        records = installs.all_installs(db)
        found: dict[str, str] = {}
        connectors = rows.of_kind(db, self.kind)
        store = store_of(root) if connectors else None
        for row in connectors:
            record = records.get(row.address)
            if record is None:
                found[row.address] = "not installed (no install record)"
                continue
            assert store is not None
            problems = (
                verify(root, record.record) if refresh else missing(root, record.record, store)
            )
            if not refresh and not record.verified_ok and not problems:
                problems = [f"failed verification at {record.verified_at}"]
            if not problems and _unlisted(db, row):
                problems = ["its tools were not listed yet"]
            if problems:
                found[row.address] = "; ".join(problems[:3])
        return found

    def health(self, root: Path, resource: ActualResource) -> Health:
        from reconciler.packages.install import verify
        from reconciler.state.db import StateDB

        with StateDB.existing(root) as db:
            record = installs.all_installs(db).get(resource.address) if db else None
        if record is None:
            return Health("down", "not installed (no install record)")
        problems = verify(root, record.record)
        if problems:
            return Health("down", "; ".join(problems[:5]))
        return Health("ok", "installed files verified")


def _unlisted(db: StateDB, row: rows.Row) -> bool:
    """An enabled connector with no listing of its applied package: apply could not list it
    after installing it, so the next plan lists it again. Pins carried over from the package
    before an upgrade count for nothing here: they are not what the new package lists."""
    state = json.loads(row.state)
    if (state.get("spec") or {}).get("enabled") is False:
        return False
    listing = listings.get(db, row.address)
    return listing is None or listing.package_digest != (state.get("package") or {}).get("digest")


def _release(context: ApplyContext, tree: Any) -> None:
    """Remove a store entry no install uses any more (the old version after an upgrade, the
    package of a deleted connector once it is archived)."""
    from reconciler.packages.install import store_of

    assert context.root is not None
    if tree and str(tree) not in installs.trees_in_use(context.connection):
        store_of(context.root).remove(str(tree))
