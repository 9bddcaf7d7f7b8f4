"""The policy engine: which changes apply automatically, need approval, or are forbidden.

Sits between loading and planning. `build_policy` turns the pack names a Workspace selects and
the PolicyPack documents into an `ActivePolicy` (built-in packs from `packs/` included); the
planner calls `decide(policy, change)` for each `ProposedChange` and records the `Decision`.
No pydantic on this path except to validate the built-in packs once per process.
"""

from __future__ import annotations

from reconciler.policy.engine import ActivePolicy, EgressPolicy, build_policy, decide
from reconciler.policy.rules import Match, Pack, PackRule

__all__ = [
    "ActivePolicy",
    "EgressPolicy",
    "Match",
    "Pack",
    "PackRule",
    "build_policy",
    "decide",
]
