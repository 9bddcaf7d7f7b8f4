"""Building blocks shared by every resource model: closed objects, names, the envelope."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from reconciler.model.names import NAME_PATTERN

HOST_PATTERN = (
    r"^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:[0-9]{1,5})?$"
)

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
"""A resource or group name: lower-case letters, digits and dashes, like a DNS label."""

Host = Annotated[str, Field(pattern=HOST_PATTERN, max_length=253)]
"""An egress host: `api.github.com`, `*.example.com`, optionally `:port`; `*` is a wildcard."""

Text = Annotated[str, Field(max_length=4096)]

NAMED_KEYS = {"propertyNames": {"pattern": NAME_PATTERN, "maxLength": 63}}
"""Schema for a mapping whose keys are `Name`s (pydantic does not emit key constraints)."""


class Closed(BaseModel):
    """A YAML mapping with a fixed set of camelCase keys: unknown keys and coercions are errors."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,  # YAML's .inf/.nan and 1e400 are refused when loading, too
        alias_generator=to_camel,
        populate_by_name=False,
    )


class OneOf(Closed):
    """A mapping that must set exactly one of its keys (for example a Budget's scope)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> OneOf:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            keys = [field.alias or name for name, field in type(self).model_fields.items()]
            raise ValueError(f"set exactly one of: {', '.join(keys)}")
        return self


def one_of_schema(*keys: str) -> dict[str, Any]:
    """The JSON Schema counterpart of `OneOf`: exactly one of `keys` present and not null."""
    return {
        "oneOf": [
            {"required": [key], "properties": {key: {"not": {"type": "null"}}}} for key in keys
        ]
    }


class Metadata(Closed):
    """`metadata`: the name that addresses the resource, plus free-form labels."""

    name: Name
    labels: Annotated[
        dict[Name, Annotated[str, Field(max_length=253)]], Field(json_schema_extra=NAMED_KEYS)
    ] = {}
    annotations: dict[str, Text] = {}


class Resource(Closed):
    """The envelope every document under `.cloned/` shares; each kind narrows `kind` and `spec`."""

    KIND: ClassVar[str] = ""

    api_version: Literal["cloned/v1"]
    kind: str
    metadata: Metadata
    spec: Any
