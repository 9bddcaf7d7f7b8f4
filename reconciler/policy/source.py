"""Where the active policy is read from.

Flow: a loaded state -> the pack names its Workspace model selects and the PolicyPack
documents in it -> `engine.build_policy`. Here the source is the desired state (`.cloned/`);
the engine's session hands the same two things from the applied state (state database,
`cloned.lock`) to `build_policy`.
"""

from __future__ import annotations

from typing import Any

from reconciler.load.resources import DesiredState
from reconciler.policy.engine import ActivePolicy, build_policy

DESIRED_STATE = ".cloned/ (desired state)"


def from_desired_state(state: DesiredState) -> ActivePolicy:
    """The policy the desired state's Workspace selects."""
    workspace = state.workspace()
    packs: dict[str, dict[str, Any]] = {
        resource.name: resource.data
        for resource in state.resources
        if resource.kind == "PolicyPack"
    }
    return build_policy(workspace.spec.policy_packs, packs, source=DESIRED_STATE)


def inactive_packs(state: DesiredState, policy: ActivePolicy) -> tuple[str, ...]:
    """Declared PolicyPacks that the Workspace does not list (they have no effect)."""
    active = set(policy.pack_names)
    return tuple(
        resource.name
        for resource in state.resources
        if resource.kind == "PolicyPack" and resource.name not in active
    )
