"""Planning: desired state + actual state + policy -> an ordered, immutable `Plan`.

Nothing is decided twice: apply re-plans and requires the same plan id, then executes exactly
these changes in this order. The plan id is `plan_id_of` (reconciler/plan/document.py) of the
plan's redacted JSON form, the function that checks a saved plan file when it is loaded.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from reconciler.canonical import digest
from reconciler.egress.rules import PackEgress
from reconciler.engine.actual import ActualState
from reconciler.engine.diff import diff_states
from reconciler.engine.pipelines import check_pipeline_tools
from reconciler.errors import ClonedError
from reconciler.load import refs
from reconciler.load.resources import DesiredState, LoadedResource
from reconciler.model import names
from reconciler.model.names import KIND_NAMES
from reconciler.plan.document import plan_id_of
from reconciler.plan.types import (
    PLAN_FORMAT_VERSION,
    Action,
    Change,
    Decision,
    ProposedChange,
)
from reconciler.providers.base import ActualResource, PinContext
from reconciler.providers.lookup import provider_for

Decide = Callable[[ProposedChange], Decision]
Redact = Callable[[Any], Any]


@dataclass(frozen=True)
class Plan:
    """The changes that converge actual state to desired state, in the order to apply them."""

    plan_id: str
    desired_digest: str
    actual_digest: str
    actual_source: str
    policy_source: str  # "applied" or "desired (bootstrap)"
    bootstrap: bool
    changes: tuple[Change, ...]
    unmanaged: tuple[str, ...]
    desired_resources: dict[str, str]
    actual_resources: dict[str, str]
    targets: tuple[str, ...] = ()

    def content_json(self) -> dict[str, Any]:
        """The plan's JSON form (specs/plan-format.md) but for `plan_id`, `created_at` and
        `generated_by`, unredacted, in the order `cloned plan --json` prints it."""
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "desired_digest": self.desired_digest,
            "actual_digest": self.actual_digest,
            "actual_source": self.actual_source,
            "policy_source": self.policy_source,
            "bootstrap": self.bootstrap,
            "targets": list(self.targets),
            "summary": self.counts(),
            "changes": [change_json(change) for change in self.changes],
            "unmanaged": list(self.unmanaged),
            "desired_resources": dict(self.desired_resources),
            "actual_resources": dict(self.actual_resources),
        }

    def counts(self) -> dict[str, int]:
        """How many changes of each action and decision."""
        out = {
            key: 0 for key in ("create", "update", "delete", "replace", "auto", "approval", "deny")
        }
        for change in self.changes:
            out[change.action] += 1
            out[change.decision.kind] += 1
        return out


def change_json(change: Change) -> dict[str, Any]:
    """One change as plans and approval requests show it."""
    proposed = change.proposed
    return {
        "address": proposed.address,
        "kind": proposed.kind,
        "name": proposed.name,
        "action": proposed.action,
        "decision": change.decision.kind,
        "rules": [rule.to_json() for rule in change.decision.rules],
        "reason": change.decision.reason,
        "change_hash": change.change_hash,
        "risk": proposed.risk,
        "origin": proposed.origin,
        "diff": [field.to_json() for field in proposed.diff],
        **({"widens": widened} if (widened := widens(proposed)) else {}),
        **({"pins": pinned} if (pinned := pin_changes(proposed)) else {}),
    }


WIDENING_FIELDS = {
    "tools": (("package", "declared", "tools"), ("spec", "tools", "allow")),
    "egress_hosts": (("package", "declared", "egress_hosts"), ("spec", "egress", "allowHosts")),
    "secrets": (("package", "declared", "secrets"), ("spec", "secrets")),
}
"""What a Connector may do, from what its package declares and what its YAML allows."""


def widens(change: ProposedChange) -> dict[str, list[str]]:
    """What a Connector change adds to what it may run or reach (tools, egress hosts,
    secrets), declared by its package or allowed by its YAML, for reviewers to see at once."""
    if change.kind != "Connector" or change.after is None:
        return {}
    found = {}
    for what, paths in WIDENING_FIELDS.items():
        before = {name for path in paths for name in _names_at(change.before, path)}
        added = sorted({name for path in paths for name in _names_at(change.after, path)} - before)
        if added:
            found[what] = added
    return found


def pin_changes(change: ProposedChange) -> dict[str, Any]:
    """How a Connector change moves its tool pins: the tools `added`, `changed` (another
    definition digest) and `removed`, and what is `flagged` in the added or changed ones."""
    if change.kind != "Connector":
        return {}
    before = _pins(change.before)
    after = _pins(change.after)
    if before == after or change.after is None:
        return {}
    added = sorted(set(after) - set(before))
    changed = sorted(
        name
        for name in set(after) & set(before)
        if after[name].get("digest") != before[name].get("digest")
    )
    removed = sorted(set(before) - set(after))
    flagged = {
        name: [str(flag) for flag in after[name].get("flags") or []]
        for name in (*added, *changed)
        if after[name].get("flags")
    }
    found: dict[str, Any] = {"added": added, "changed": changed, "removed": removed}
    if flagged:
        found["flagged"] = dict(sorted(flagged.items()))
    return found if added or changed or removed else {}


def _pins(state: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    tools = (state or {}).get("tools")
    pins = tools.get("pins") if isinstance(tools, dict) else None
    return (
        {str(k): v for k, v in pins.items() if isinstance(v, dict)}
        if isinstance(pins, dict)
        else {}
    )


def _names_at(state: dict[str, Any] | None, path: tuple[str, ...]) -> list[str]:
    node: Any = state or {}
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    items = node if isinstance(node, list) else []
    return [str(item.get("name")) if isinstance(item, dict) else str(item) for item in items]


def resource_state(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a normalised resource's YAML that plans compare and the state records
    (`desired_state` adds what a provider pins, for kinds that install packages)."""
    metadata = data.get("metadata") or {}
    return {
        "metadata": {
            "labels": metadata.get("labels") or {},
            "annotations": metadata.get("annotations") or {},
        },
        "spec": data.get("spec") or {},
    }


PINNED = ("package", "tools", "execution")
"""The parts of a planned state that no file holds: what a provider pinned or derived."""


def content_digest(state: dict[str, Any]) -> str:
    """The digest of a state's YAML part (what a commit's file holds): authorship follows
    this through history, since a pinned package is not in any file."""
    return digest({key: value for key, value in state.items() if key not in PINNED})


def pin_context(
    desired: DesiredState,
    *,
    refresh: bool = False,
    fresh: set[str] | None = None,
    listings: Mapping[str, Any] | None = None,
    registry_denies: tuple[PackEgress, ...] = (),
) -> PinContext:
    """What providers read to pin packages for `desired` (its revision, its Registries, the
    tool listings seen); `fresh` collects the pins (`pins.fresh_key`) resolved from a registry
    asked now."""
    registries = {r.name: r.spec for r in desired.resources if r.kind == "Registry"}
    pipelines = {r.name: resource_state(r.data) for r in desired.resources if r.kind == "Pipeline"}
    found = set() if fresh is None else fresh  # an empty set given is the one to fill
    return PinContext(
        desired.root,
        desired.revision,
        registries,
        refresh,
        found,
        listings or {},
        registry_denies,
        pipelines,
    )


def desired_state(
    resource: LoadedResource, applied: ActualResource | None, context: PinContext
) -> dict[str, Any]:
    """The state planning compares and apply records: the YAML's, plus what the resource's
    provider pins it to install (`package`), when it installs anything."""
    provider = provider_for(resource.kind)
    assert provider is not None
    state = resource_state(resource.data)
    state.update(provider.derive(resource, context))
    package = provider.pin(resource, applied, context)
    if package is not None:
        state["package"] = package
        tools = provider.pin_tools(resource, applied, package, context)
        if tools is not None:
            state["tools"] = tools
    return state


def make_plan(
    desired: DesiredState,
    actual: ActualState,
    *,
    decide: Decide,
    policy_source: str,
    redact: Redact,
    pins: PinContext,
    targets: Iterable[str] = (),
) -> Plan:
    """Plan the changes from `actual` to `desired`; `decide` is the active policy, `redact` its
    redactor (the id is that of the redacted plan, as it is printed and saved), `pins` what
    providers read to pin packages."""
    managed = [r for r in desired.resources if provider_for(r.kind) is not None]
    unmanaged = tuple(sorted(r.address for r in desired.resources if provider_for(r.kind) is None))
    wanted = {resource.address: resource for resource in managed}
    states = {
        address: desired_state(r, actual.resources.get(address), pins)
        for address, r in wanted.items()
    }
    check_pipeline_tools(desired, states)
    desired_digests = {address: digest(state) for address, state in states.items()}
    actual_digests = {address: r.digest for address, r in actual.resources.items()}
    bootstrap = not actual.resources

    proposed: list[ProposedChange] = []
    for address in _apply_order(managed):
        resource = wanted[address]
        current = actual.resources.get(address)
        if current is not None and current.digest == desired_digests[address]:
            if address in actual.damaged:
                proposed.append(_repair(resource, current, states[address], actual, bootstrap))
            continue
        proposed.append(
            _propose(resource, current.state if current else None, states[address], bootstrap)
        )
    for address in _delete_order(actual, wanted):
        current = actual.resources[address]
        proposed.append(
            _proposal(current.kind, current.name, "delete", current.state, None, "state", bootstrap)
        )
    proposed = _targeted(proposed, set(targets), managed)
    changes = tuple(Change(change, decide(change)) for change in proposed)
    desired_digest = digest(desired_digests)
    actual_digest = digest(actual_digests)
    plan = Plan(
        plan_id="",
        desired_digest=desired_digest,
        actual_digest=actual_digest,
        actual_source=actual.source,
        policy_source=policy_source,
        bootstrap=bootstrap,
        changes=changes,
        unmanaged=unmanaged,
        desired_resources=desired_digests,
        actual_resources=actual_digests,
        targets=tuple(sorted(set(targets))),
    )
    return replace(plan, plan_id=plan_id_of(redact(plan.content_json())))


def _propose(
    resource: LoadedResource,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    bootstrap: bool,
) -> ProposedChange:
    action: Action = "create" if before is None else "update"
    return _proposal(
        resource.kind, resource.name, action, before, after, resource.origin, bootstrap
    )


def _repair(
    resource: LoadedResource,
    current: ActualResource,
    after: dict[str, Any],
    actual: ActualState,
    bootstrap: bool,
) -> ProposedChange:
    """Reinstall what is applied but damaged: the applied state with what is wrong with it
    (`installed`), to the same state installed afresh."""
    before = {**current.state, "installed": actual.damaged[current.address]}
    return _proposal(
        resource.kind, resource.name, "update", before, after, resource.origin, bootstrap
    )


def propose_update(
    kind: str,
    name: str,
    before: dict[str, Any],
    after: dict[str, Any],
    origin: str,
    bootstrap: bool,
) -> ProposedChange:
    """An update from `before` to `after` as a plan proposes it (apply's tool pins use it)."""
    return _proposal(kind, name, "update", before, after, origin, bootstrap)


def _proposal(
    kind: str,
    name: str,
    action: Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    origin: str,
    bootstrap: bool,
) -> ProposedChange:
    provider = provider_for(kind)
    assert provider is not None
    diff = tuple(diff_states(before, after))
    if action == "update" and provider.requires_replace(diff):
        action = "replace"
    return ProposedChange(
        address=names.address(kind, name),
        kind=kind,
        name=name,
        action=action,
        before=before,
        after=after,
        diff=diff,
        risk=provider.risk(action, diff),
        origin=origin,
        bootstrap=bootstrap,
    )


def _priority(kind: str, name: str) -> tuple[int, str]:
    return (KIND_NAMES.index(kind) if kind in KIND_NAMES else len(KIND_NAMES), name)


def _apply_order(resources: list[LoadedResource]) -> list[str]:
    """Addresses with every resource after what it refers to; ties by kind order, then name."""
    by_address = {resource.address: resource for resource in resources}
    depends: dict[str, set[str]] = {address: set() for address in by_address}
    for resource in resources:
        for kind, name in refs.dependencies(resource):
            target = names.address(kind, name)
            if target in by_address and target != resource.address:
                depends[resource.address].add(target)
    return _topological(by_address, depends)


def _topological(items: dict[str, LoadedResource], depends: dict[str, set[str]]) -> list[str]:
    waiting = {address: set(needs) for address, needs in depends.items()}
    users: dict[str, set[str]] = {address: set() for address in items}
    for address, needs in depends.items():
        for need in needs:
            users[need].add(address)
    ready = [
        (_priority(items[a].kind, items[a].name), a) for a, needs in waiting.items() if not needs
    ]
    heapq.heapify(ready)
    order = []
    while ready:
        _, address = heapq.heappop(ready)
        order.append(address)
        for user in users[address]:
            waiting[user].discard(address)
            if not waiting[user]:
                heapq.heappush(ready, (_priority(items[user].kind, items[user].name), user))
    if len(order) != len(items):
        cycle = sorted(address for address in items if address not in order)
        raise ClonedError(f"resources refer to each other in a cycle: {', '.join(cycle)}")
    return order


def _delete_order(actual: ActualState, wanted: dict[str, LoadedResource]) -> list[str]:
    """Applied resources that are no longer desired, dependents first (reverse kind order)."""
    gone = [r for address, r in actual.resources.items() if address not in wanted]
    return [r.address for r in sorted(gone, key=lambda r: _priority(r.kind, r.name), reverse=True)]


def _targeted(
    proposed: list[ProposedChange], targets: set[str], managed: list[LoadedResource]
) -> list[ProposedChange]:
    """Only the changes to `targets` and to what they depend on (all when no target)."""
    if not targets:
        return proposed
    known = {change.address for change in proposed} | {r.address for r in managed}
    unknown = sorted(targets - known)
    if unknown:
        raise ClonedError(
            f"--target {unknown[0]}: no such resource in the desired or actual state",
            hint="addresses are kind.name in lower case, e.g. budget.research",
        )
    by_address = {resource.address: resource for resource in managed}
    wanted = set()
    pending = list(targets)
    while pending:
        address = pending.pop()
        if address in wanted:
            continue
        wanted.add(address)
        resource = by_address.get(address)
        if resource is not None:
            pending += [names.address(kind, name) for kind, name in refs.dependencies(resource)]
    return [change for change in proposed if change.address in wanted]
