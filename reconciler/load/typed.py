"""The typed model of a resource held as a dict: a loaded document or an applied state.

Flow: loading keeps each resource's normalised dict (digests and diffs are computed from it),
and the state database and `cloned.lock` hold applied states as dicts by nature; readers turn
them into the kind's validated model here and read its fields. Importing this module is cheap:
the models are built on the first conversion (the Workspace's alone when only it is
asked for), never on a cache-hit load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from reconciler.errors import ClonedError
from reconciler.model.names import API_VERSION, address

if TYPE_CHECKING:
    from reconciler.model.base import Resource
    from reconciler.model.kinds import PolicyPack
    from reconciler.model.workspace import Workspace


def document_model(document: Mapping[str, Any], *, where: str) -> Resource:
    """The kind's model of one normalised resource document; `where` names it in errors."""
    from pydantic import ValidationError

    model = _model_of(str(document.get("kind")))
    if model is None:
        raise ClonedError(f"{where}: unknown kind {document.get('kind')!r}")
    try:
        return model.model_validate(document)
    except ValidationError:
        # Worded as loading words a document's problems (error path only).
        from reconciler.load.validate import check_document

        details = "; ".join(finding.message for finding in check_document(dict(document)))
        raise ClonedError(f"{where}: does not validate as a {model.__name__} ({details})") from None


def _model_of(kind: str) -> type[Resource] | None:
    if kind == "Workspace":
        # Every plan reads the Workspace: build its models alone, not all eight kinds'.
        from reconciler.model.workspace import Workspace

        return Workspace
    from reconciler.model.kinds import KINDS

    return KINDS.get(kind)


@overload
def applied_model(
    kind: Literal["Workspace"], name: str, state: Mapping[str, Any], *, source: str = ...
) -> Workspace: ...
@overload
def applied_model(
    kind: Literal["PolicyPack"], name: str, state: Mapping[str, Any], *, source: str = ...
) -> PolicyPack: ...
@overload
def applied_model(
    kind: str, name: str, state: Mapping[str, Any], *, source: str = ...
) -> Resource: ...
def applied_model(
    kind: str, name: str, state: Mapping[str, Any], *, source: str = "the applied state"
) -> Resource:
    """The kind's model of an applied resource's state (`{metadata, spec}`), validated like a
    loaded document; a state that no longer validates is a `ClonedError` naming its address."""
    where = f"{address(kind, name)} in {source}"
    metadata = state.get("metadata") if isinstance(state, Mapping) else None
    spec = state.get("spec") if isinstance(state, Mapping) else None
    if not isinstance(metadata, Mapping) or spec is None:
        raise ClonedError(f"{where}: not a resource state (it needs metadata and spec)")
    document = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {**metadata, "name": name},
        "spec": spec,
    }
    return document_model(document, where=where)
