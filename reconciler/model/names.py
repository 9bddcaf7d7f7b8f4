"""Names every layer shares, without importing pydantic (the cached load path uses them): the
kinds in apply order, the words of a plan (action, risk, decision) and resource addresses."""

from __future__ import annotations

from typing import Literal, get_args

Action = Literal["create", "update", "delete", "replace"]
Risk = Literal["low", "medium", "high"]
DecisionKind = Literal["auto", "approval", "deny"]

API_VERSION = "cloned/v1"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A resource, group or key name: lower-case letters, digits and dashes, like a DNS label."""

VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,3}([-.+]?[0-9A-Za-z]+([.-][0-9A-Za-z]+)*)?$"
"""A package version: semver (`1.4.2`), or what PyPI uses (`2026.10.19`, `0.6.0rc1`)."""

Kind = Literal[
    "Workspace",
    "PolicyPack",
    "Budget",
    "Registry",
    "Connector",
    "SecretRef",
    "Model",
    "Blueprint",
    "Pipeline",
    "Run",
]
"""Every kind, in the order documents of that kind are applied."""

KIND_NAMES: tuple[str, ...] = get_args(Kind)


def address(kind: str, name: str) -> str:
    """A resource's address, `kind.name` with the kind in lower case (`budget.daily`)."""
    return f"{kind.lower()}.{name}"
