"""What loading produces: the resources of the desired state, with where each came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.model.names import KIND_NAMES, address


@dataclass(frozen=True)
class LoadedResource:
    """One validated resource document and its origin (`file:line`)."""

    kind: str
    name: str
    file: str
    line: int
    document: int
    data: dict[str, Any]

    @property
    def address(self) -> str:
        """`kind.name` in lower case (SPEC section 11)."""
        return address(self.kind, self.name)

    @property
    def origin(self) -> str:
        """`file:line` of the document that declares the resource."""
        return f"{self.file}:{self.line}"

    @property
    def spec(self) -> dict[str, Any]:
        """The resource's `spec` mapping."""
        spec: dict[str, Any] = self.data.get("spec") or {}
        return spec


@dataclass(frozen=True)
class DesiredState:
    """The whole validated desired state of one repository's `.cloned/` folder."""

    root: Path
    resources: tuple[LoadedResource, ...]
    files: int
    cache_hits: int

    def counts(self) -> dict[str, int]:
        """How many resources of each kind, every kind listed, in the canonical kind order."""
        counted = Counter(resource.kind for resource in self.resources)
        return {kind: counted.get(kind, 0) for kind in KIND_NAMES}
