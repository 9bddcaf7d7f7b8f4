"""Everything a plan needs, gathered once: desired state, actual state, the policy that decides,
the approvers that may approve, the redactor, and who is acting.

Policy and approvers come from the *applied* state: a branch cannot loosen the policy that
judges it, nor approve itself by adding an approver. Only at bootstrap, when nothing is applied
yet, do they come from the desired state.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import keys
from reconciler.approvals.validity import Approver, approvers_of
from reconciler.engine import actual as actual_state
from reconciler.engine.actual import ActualState
from reconciler.engine.planner import Plan, make_plan, pin_context, resource_state
from reconciler.load.resources import DesiredState
from reconciler.load.typed import applied_model
from reconciler.load.workspace import load_desired_state
from reconciler.policy.engine import ActivePolicy, build_policy, decide
from reconciler.redact import Redactor, active
from reconciler.state import listings
from reconciler.state.db import StateDB
from reconciler.state.listings import Listing


@dataclass(frozen=True)
class Session:
    """The inputs of one plan or apply."""

    root: Path
    desired: DesiredState
    actual: ActualState
    policy: ActivePolicy
    policy_source: str  # "applied" or "desired (bootstrap)"
    workspace: str
    approvers: dict[str, Approver]
    actor: str
    redactor: Redactor
    fresh: set[str] = field(default_factory=set)
    """The registry pins (`pins.fresh_key`) this session's plans resolved just now."""
    listings: Mapping[str, Listing] = field(default_factory=dict)
    """The tool listings last seen per connector (state database only)."""

    def plan(self, targets: tuple[str, ...] = (), *, refresh: bool = False) -> Plan:
        """The plan from actual to desired state under the applied policy; `refresh` looks
        again at packages that are pinned already (a registry is asked even when the
        Connector did not change)."""
        from reconciler.engine.secrets import check_secrets

        check_secrets(self.desired)
        actual = self.actual
        seen = self.listings
        if refresh and actual.source == "state":
            actual, seen = _reverified(self.root, actual, self.redactor, seen)
        return make_plan(
            self.desired,
            actual,
            decide=lambda change: decide(self.policy, change),
            policy_source=self.policy_source,
            redact=self.redactor.data,
            pins=pin_context(
                self.desired,
                refresh=refresh,
                fresh=self.fresh,
                listings=seen,
                registry_denies=self.policy.registry_denies,
            ),
            targets=targets,
        )


def open_session(
    root: Path,
    db: StateDB | None,
    *,
    use_cache: bool = True,
    desired: DesiredState | None = None,
    actual: ActualState | None = None,
    lock_label: str = "cloned.lock",
) -> Session:
    """Gather a session for the workspace at `root` (actual state from `db`, else the lock);
    `desired` and `actual` are used as given when the caller has them (a committed revision,
    named by `lock_label`)."""
    if actual is None:
        actual = actual_state.from_db(db, root) if db is not None else actual_state.from_lock(root)
    applied = next((r for r in actual.resources.values() if r.kind == "Workspace"), None)
    source = "applied" if applied is not None else "desired (bootstrap)"
    label = _SOURCES[source, actual.source].replace("cloned.lock", lock_label)
    if applied is not None:
        workspace = applied_model("Workspace", applied.name, applied.state, source=label)
        packs = {r.name: r.state for r in actual.resources.values() if r.kind == "PolicyPack"}
        policy = build_policy(workspace.spec.policy_packs, packs, source=label)
        # Taught before the desired state loads: the loader then neither caches nor prints
        # what the applied policy masks, even where the branch drops the pattern.
        _redactor(policy.redaction_patterns)
    if desired is None:
        desired = load_desired_state(root, use_cache=use_cache)
    if applied is None:
        workspace = desired.workspace()
        packs = {
            r.name: resource_state(r.data) for r in desired.resources if r.kind == "PolicyPack"
        }
        policy = build_policy(workspace.spec.policy_packs, packs, source=label)
    approvers = approvers_of(workspace)
    return Session(
        root=root,
        desired=desired,
        actual=actual,
        policy=policy,
        policy_source=source,
        workspace=workspace.metadata.name,
        approvers=approvers,
        actor=local_actor(approvers),
        redactor=_redactor(policy.redaction_patterns),
        listings=listings.all_listings(db) if db is not None else {},
    )


def _reverified(
    root: Path, actual: ActualState, redactor: Redactor, seen: Mapping[str, Listing]
) -> tuple[ActualState, Mapping[str, Listing]]:
    """`actual` with what is installed re-hashed, and the connectors' tools listed again
    (`plan --refresh`)."""
    from dataclasses import replace

    from reconciler.engine.listing import refresh_listings

    with StateDB.existing(root) as db:
        if db is None:
            return actual, seen
        damaged = actual_state.from_db(db, root, refresh=True).damaged
        return replace(actual, damaged=damaged), refresh_listings(root, db, redactor)


_SOURCES = {
    ("applied", "state"): "the applied state (state database)",
    ("applied", "lock"): "the applied state (cloned.lock)",
    ("desired (bootstrap)", "state"): ".cloned/ (nothing applied yet)",
    ("desired (bootstrap)", "lock"): ".cloned/ (nothing applied yet)",
    ("desired (bootstrap)", "empty"): ".cloned/ (nothing applied yet)",
}


def _redactor(patterns: tuple[str, ...]) -> Redactor:
    """The process redactor, taught the active policy's patterns."""
    redactor = active()
    redactor.add_patterns(patterns)
    return redactor


def local_actor(approvers: dict[str, Approver]) -> str:
    """Who is acting: the approver whose key is in this user's key folder, else the OS user."""
    for key in keys.list_keys():
        for approver in approvers.values():
            if key.private_path is not None and keys.same_key(key.public_key, approver.public_key):
                return approver.name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
