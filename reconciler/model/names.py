"""The kind names, in apply order, without importing pydantic (the cached load path uses it)."""

from __future__ import annotations

KIND_NAMES = (
    "Workspace",
    "PolicyPack",
    "Budget",
    "Connector",
    "SecretRef",
    "Blueprint",
    "Pipeline",
    "Run",
)
