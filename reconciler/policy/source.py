"""Where the active policy is read from.

Flow: a loaded state -> the Workspace spec and the PolicyPack documents in it ->
`engine.build_policy`. Today the source is the desired state (`.cloned/`); the applied
state (state database, `cloned.lock`) hands the same two things to `build_policy`.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import ClonedError
from reconciler.load.resources import DesiredState
from reconciler.policy.engine import ActivePolicy, build_policy

DESIRED_STATE = ".cloned/ (desired state)"


def from_desired_state(state: DesiredState) -> ActivePolicy:
    """The policy the desired state's Workspace selects."""
    workspace = next((r for r in state.resources if r.kind == "Workspace"), None)
    if workspace is None:
        raise ClonedError("no Workspace resource: exactly one is required (cloned init)")
    packs: dict[str, dict[str, Any]] = {
        resource.name: resource.data
        for resource in state.resources
        if resource.kind == "PolicyPack"
    }
    return build_policy(workspace.spec, packs, source=DESIRED_STATE)


def inactive_packs(state: DesiredState, policy: ActivePolicy) -> tuple[str, ...]:
    """Declared PolicyPacks that the Workspace does not list (they have no effect)."""
    active = set(policy.pack_names)
    return tuple(
        resource.name
        for resource in state.resources
        if resource.kind == "PolicyPack" and resource.name not in active
    )
