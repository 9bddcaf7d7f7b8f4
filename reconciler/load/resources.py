"""What loading produces: the resources of the desired state, with where each came from.

Each resource keeps its normalised dict (`data`: digests, diffs and the cache are made of it)
and gives its validated pydantic model (`model`) on first access. A cache-hit load builds no
model, so it imports no pydantic; readers of fields use the model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ClonedError
from reconciler.load.typed import document_model
from reconciler.model.names import KIND_NAMES, address

if TYPE_CHECKING:
    from reconciler.model.base import Resource
    from reconciler.model.workspace import Workspace


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
        """The normalised `spec` mapping, for the checks every load runs (cache hits too)."""
        spec: dict[str, Any] = self.data["spec"]
        return spec

    @cached_property
    def model(self) -> Resource:
        """The kind's validated model of `data`, built on first access."""
        return document_model(self.data, where=f"{self.origin}: {self.address}")


@dataclass(frozen=True)
class DesiredState:
    """The whole validated desired state of one repository's `.cloned/` folder."""

    root: Path
    resources: tuple[LoadedResource, ...]
    files: int
    cache_hits: int
    revision: str | None = None  # the commit it was read from; None: the working tree

    def counts(self) -> dict[str, int]:
        """How many resources of each kind, every kind listed, in the canonical kind order."""
        counted = Counter(resource.kind for resource in self.resources)
        return {kind: counted.get(kind, 0) for kind in KIND_NAMES}

    def workspace(self) -> Workspace:
        """The model of the one Workspace (loading refuses a state without exactly one)."""
        from reconciler.model.workspace import Workspace

        found = next((r.model for r in self.resources if r.kind == "Workspace"), None)
        if found is None:
            raise ClonedError("no Workspace resource: exactly one is required (cloned init)")
        assert isinstance(found, Workspace)
        return found
