"""What the runtime enforces: the applied state, read from the state database, never from
uncommitted YAML. The gateway and `cloned connectors call` build one `AppliedView` and build it
again when the database's applied state changes (`applied_digest`).

A connector serves a tool only when it is enabled, installed, the tool is pinned, and the
connector's `tools.allow`/`tools.deny` and every active pack's `tools.deny` allow it
(`allowed`); `require_approval` says when a call needs its own approval.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.canonical import digest
from reconciler.errors import ClonedError
from reconciler.load.typed import applied_model
from reconciler.model.kinds import BudgetSpec, ConnectorSpec, SecretRefSpec
from reconciler.model.workspace import WorkspaceSpec
from reconciler.policy.engine import ActivePolicy, build_policy
from reconciler.providers.base import ActualResource
from reconciler.providers.lookup import managed_kinds, provider_for
from reconciler.state import installs
from reconciler.state.db import StateDB

SOURCE = "the applied state (state database)"
SEPARATOR = "__"
"""Gateway tool names are `CONNECTOR__TOOL` (SPEC section 11)."""


@dataclass(frozen=True)
class AppliedConnector:
    """One applied Connector as the runtime sees it."""

    name: str
    spec: ConnectorSpec
    package: Mapping[str, Any]
    tools: Mapping[str, Any] | None
    """The pinned `tools` block (`runtime.definitions.tools_block`), None before a listing."""
    install: Mapping[str, Any] | None
    """The install record (`state.installs`), None when it is not installed."""

    def pins(self) -> Mapping[str, Any]:
        """tool name -> its pin (`digest`, `definition`, `flags`)."""
        return (self.tools or {}).get("pins") or {}


@dataclass(frozen=True)
class AppliedBudget:
    """One applied Budget with the Workspace defaults filled in."""

    name: str
    spec: BudgetSpec
    period: str
    on_exceed: str

    def covers(self, connector: str, pipeline: str | None) -> bool:
        """Whether a call of `connector` (within `pipeline`, if any) counts against it."""
        scope = self.spec.scope
        if scope.workspace:
            return True
        if scope.connector is not None:
            return scope.connector == connector
        return pipeline is not None and scope.pipeline == pipeline


@dataclass(frozen=True)
class AppliedView:
    """Everything the governed call path reads, from one read of the state database."""

    workspace: str
    workspace_spec: WorkspaceSpec
    policy: ActivePolicy
    connectors: Mapping[str, AppliedConnector]
    budgets: tuple[AppliedBudget, ...]
    digest: str
    """Changes whenever the applied state does (the gateway's `tools/list_changed`)."""
    secret_refs: Mapping[str, SecretRefSpec] = field(default_factory=dict)
    """The applied SecretRefs by name: who may use each vault secret (`providers.grants`)."""

    def allowed(self, connector: AppliedConnector, tool: str) -> str | None:
        """None when `tool` of `connector` may be served, else the rule that refuses it."""
        selection = connector.spec.tools
        if any(fnmatch.fnmatchcase(tool, pattern) for pattern in selection.deny):
            return f"connector.{connector.name} tools.deny"
        if selection.allow and not any(
            fnmatch.fnmatchcase(tool, pattern) for pattern in selection.allow
        ):
            return f"connector.{connector.name} tools.allow"
        public = f"{connector.name}{SEPARATOR}{tool}"
        for pattern in self.policy.tools_deny:
            if fnmatch.fnmatchcase(tool, pattern) or fnmatch.fnmatchcase(public, pattern):
                return f"policy tools.deny {pattern!r}"
        return None

    def require_approval(self, connector: str, tool: str) -> str | None:
        """The `tools.requireApproval` pattern a call of this tool matches, if any."""
        public = f"{connector}{SEPARATOR}{tool}"
        for pattern in self.policy.tools_require_approval:
            if fnmatch.fnmatchcase(tool, pattern) or fnmatch.fnmatchcase(public, pattern):
                return pattern
        return None

    def served(self) -> list[tuple[str, AppliedConnector, str]]:
        """(public name, connector, tool) for every tool the gateway lists, sorted by name:
        enabled, installed connectors' pinned tools that are allowed."""
        found = []
        for connector in self.connectors.values():
            if not connector.spec.enabled or connector.install is None:
                continue
            for tool in connector.pins():
                if self.allowed(connector, tool) is None:
                    found.append((f"{connector.name}{SEPARATOR}{tool}", connector, tool))
        return sorted(found, key=lambda item: item[0])

    def budgets_for(self, connector: str, pipeline: str | None = None) -> list[AppliedBudget]:
        """The budgets in scope of a call (workspace, the connector's, the pipeline's)."""
        return [budget for budget in self.budgets if budget.covers(connector, pipeline)]


def split_public(name: str) -> tuple[str, str] | None:
    """`CONNECTOR__TOOL` as (connector, tool), or None when it is not such a name."""
    connector, separator, tool = name.partition(SEPARATOR)
    if not separator or not connector or not tool:
        return None
    return connector, tool


def read_applied(db: StateDB) -> AppliedView:
    """The applied state in the database as the runtime enforces it; a workspace never applied
    is an error saying to apply first."""
    resources: dict[str, ActualResource] = {}
    for kind in sorted(managed_kinds()):
        provider = provider_for(kind)
        assert provider is not None
        resources.update(provider.read_actual(db))
    applied = next((r for r in resources.values() if r.kind == "Workspace"), None)
    if applied is None:
        raise ClonedError(
            "nothing is applied yet: the runtime serves only the applied state",
            hint="run `cloned apply` first",
        )
    workspace = applied_model("Workspace", applied.name, applied.state, source=SOURCE)
    packs = {r.name: r.state for r in resources.values() if r.kind == "PolicyPack"}
    policy = build_policy(workspace.spec.policy_packs, packs, source=SOURCE)
    records = installs.all_installs(db)
    connectors: dict[str, AppliedConnector] = {}
    budgets: list[AppliedBudget] = []
    refs: dict[str, SecretRefSpec] = {}
    defaults = workspace.spec.defaults.budgets
    for resource in resources.values():
        if resource.kind == "Connector":
            model = applied_model("Connector", resource.name, resource.state, source=SOURCE)
            record = records.get(resource.address)
            connectors[resource.name] = AppliedConnector(
                resource.name,
                model.spec,
                resource.state.get("package") or {},
                resource.state.get("tools"),
                record.record if record is not None else None,
            )
        elif resource.kind == "SecretRef":
            ref = applied_model("SecretRef", resource.name, resource.state, source=SOURCE)
            refs[resource.name] = ref.spec
        elif resource.kind == "Budget":
            model = applied_model("Budget", resource.name, resource.state, source=SOURCE)
            spec: BudgetSpec = model.spec
            budgets.append(
                AppliedBudget(
                    resource.name,
                    spec,
                    spec.period or defaults.period,
                    spec.on_exceed or defaults.on_exceed,
                )
            )
    return AppliedView(
        workspace=workspace.metadata.name,
        workspace_spec=workspace.spec,
        policy=policy,
        connectors=dict(sorted(connectors.items())),
        budgets=tuple(sorted(budgets, key=lambda b: b.name)),
        digest=applied_digest(db),
        secret_refs=dict(sorted(refs.items())),
    )


def applied_digest(db: StateDB) -> str:
    """A digest of every applied resource and install record: cheap, so the gateway can poll."""
    rows = db.reader.execute("SELECT address, digest FROM resources ORDER BY address").fetchall()
    records = db.reader.execute("SELECT address, record FROM installs ORDER BY address").fetchall()
    return digest([[list(row) for row in rows], [list(row) for row in records]])
