"""Samples for the policy tests: proposed changes built the way planning builds them."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.load.validate import validate_document
from reconciler.load.yamlio import parse
from reconciler.plan.types import ABSENT, FieldDiff, ProposedChange
from reconciler.policy import build_policy
from tests.conftest import PUBLIC_KEY, QUICKSTART


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value for every leaf; lists are leaves (as the planner diffs them)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(leaves(value, f"{prefix}.{key}" if prefix else key))
    return out


def change(
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    bootstrap: bool = False,
    risk: str = "medium",
    name: str = "sample",
    action: str = "",
    packages: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None),
) -> ProposedChange:
    """A ProposedChange between two specs (None: absent), with the leaf diff planning makes;
    `packages` are the pinned packages before and after (a Connector's `package` block)."""
    action = action or ("create" if before is None else "delete" if after is None else "update")
    old = None if before is None else {"metadata": {"name": name}, "spec": before}
    new = None if after is None else {"metadata": {"name": name}, "spec": after}
    if old is not None and packages[0] is not None:
        old["package"] = packages[0]
    if new is not None and packages[1] is not None:
        new["package"] = packages[1]
    old_leaves, new_leaves = leaves(old or {}), leaves(new or {})
    diff = tuple(
        FieldDiff(path, old_leaves.get(path, ABSENT), new_leaves.get(path, ABSENT))
        for path in sorted(old_leaves.keys() | new_leaves.keys())
        if old_leaves.get(path, ABSENT) != new_leaves.get(path, ABSENT)
    )
    return ProposedChange(
        address=f"{kind.lower()}.{name}",
        kind=kind,
        name=name,
        action=action,  # type: ignore[arg-type]
        before=old,
        after=new,
        diff=diff,
        risk=risk,  # type: ignore[arg-type]
        origin="test.yaml:1",
        bootstrap=bootstrap,
    )


def edited(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `spec` with the dotted `path` set to `value` (ABSENT removes it)."""
    out = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is ABSENT:
        del node[last]
    else:
        node[last] = value
    return out


BUDGET = {
    "scope": {"workspace": True},
    "period": "month",
    "limits": {"cost_usd": 50, "tokens": 2000},
}
CONNECTOR = {
    "source": {"path": "connectors/fetch"},
    "version": "1.0.0",
    "publisher": "acme",
    "tools": {"allow": ["fetch"], "deny": []},
    "egress": {"allowHosts": ["api.example.com"]},
    "secrets": ["token"],
}
PACKAGE = {
    "source": "registry",
    "version": "1.0.0",
    "publisher": "acme",
    "digest": "sha256:" + "1" * 64,
    "declared": {"tools": ["fetch"], "egress_hosts": [], "secrets": []},
}
REGISTRY = {"url": "https://registry.example/", "root": "sha256:" + "2" * 64}
WORKSPACE = {
    "policyPacks": ["baseline"],
    "approvers": [{"name": "alice", "publicKey": PUBLIC_KEY, "groups": ["admins"]}],
}
POLICY = {"rules": [{"name": "r", "decision": "deny", "match": {"kinds": ["Run"]}}]}
SECRET = {"ref": "vault://x"}


def quickstart_overlay() -> dict[str, Any]:
    """The quickstart's research-overlay pack, validated and normalised as loading does."""
    text = (QUICKSTART / ".cloned" / "policy" / "research-overlay.yaml").read_text()
    findings, data = validate_document(parse(text)[0].data)
    assert not findings and data is not None
    return data


BASELINE = build_policy(["baseline"], {})
STRICT = build_policy(["strict"], {})
OVERLAY = build_policy(["baseline", "research-overlay"], {"research-overlay": quickstart_overlay()})
POLICIES = {"baseline": BASELINE, "strict": STRICT, "overlay": OVERLAY}


def update(
    kind: str, spec: dict[str, Any], path: str, value: Any, **options: Any
) -> ProposedChange:
    """An update of `spec` that sets dotted `path` to `value` (ABSENT removes it)."""
    return change(kind, spec, edited(spec, path, value), **options)


def create(kind: str, spec: dict[str, Any], **options: Any) -> ProposedChange:
    return change(kind, None, spec, **options)


def delete(kind: str, spec: dict[str, Any]) -> ProposedChange:
    return change(kind, spec, None)
