"""Arguments of a governed call against the tool's pinned input schema (jsonschema, the
dialect the schema's `$schema` names, else Draft 2020-12). Validators are built once per pin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_VALIDATORS: dict[str, Any] = {}
_MAX_CACHED = 4096


def problem(pin: str, schema: Mapping[str, Any] | None, arguments: Any) -> str | None:
    """Why `arguments` do not fit the pinned schema (naming the failing path), or None."""
    validator = _VALIDATORS.get(pin)
    if validator is None:
        built = _build(schema if schema is not None else {"type": "object"})
        if isinstance(built, str):
            return built
        validator = built
        if len(_VALIDATORS) >= _MAX_CACHED:
            _VALIDATORS.clear()
        _VALIDATORS[pin] = validator
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.path)))
    if not errors:
        return None
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (
        f"the arguments do not fit the pinned input schema at {first.json_path}: "
        f"{_short(first.message)}{more}"
    )


def _build(schema: Mapping[str, Any]) -> Any:
    """A validator for `schema`, or why the schema itself is no valid JSON Schema."""
    import jsonschema
    from jsonschema import validators

    if not isinstance(schema, Mapping):
        return "the pinned input schema is not a JSON object; the tool cannot be called"
    cls = validators.validator_for(dict(schema), default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        return (
            f"the pinned input schema is not a valid JSON Schema ({_short(exc.message)}); "
            "the tool cannot be called"
        )
    return cls(dict(schema), format_checker=cls.FORMAT_CHECKER)


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."
