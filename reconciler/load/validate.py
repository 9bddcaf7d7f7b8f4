"""Validate one parsed document against its kind's model; explain every error in user terms.

Returns findings as (path inside the document, whether to point at the key, message); the
caller turns the path into a line and column only when there is something to report.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from reconciler.load.messages import did_you_mean, dotted
from reconciler.load.yamlio import Path
from reconciler.model.base import HOST_PATTERN
from reconciler.model.kinds import (
    DIGEST_PATTERN,
    KINDS,
    PACKAGE_PATTERN,
    PYPI_PACKAGE_PATTERN,
    REGISTRY_URL_PATTERN,
    VAULT_REF_PATTERN,
)
from reconciler.model.names import API_VERSION, NAME_PATTERN, VERSION_PATTERN
from reconciler.model.workspace import EMAIL_PATTERN, PUBLIC_KEY_PATTERN


@dataclass(frozen=True)
class Finding:
    """One problem inside a document, before it has a line and column."""

    at: Path
    message: str
    key: bool = False


_PATTERN_HINTS = {
    NAME_PATTERN: "lower-case letters, digits and dashes, at most 63, not starting or ending "
    "with a dash",
    HOST_PATTERN: "a host name such as api.example.com or *.example.com, optionally with :port",
    PUBLIC_KEY_PATTERN: 'an OpenSSH ed25519 public key line ("ssh-ed25519 AAAA... name")',
    VAULT_REF_PATTERN: "a vault reference such as vault://github-token",
    DIGEST_PATTERN: "sha256: followed by 64 lower-case hex digits",
    VERSION_PATTERN: "a version such as 1.2.0 or 2026.10.19",
    PACKAGE_PATTERN: "a registry package, publisher/name, such as acme/weather",
    PYPI_PACKAGE_PATTERN: "a PyPI project name such as mcp-server-time",
    REGISTRY_URL_PATTERN: "an https:// or http:// URL, or file:FOLDER inside the repository",
    EMAIL_PATTERN: "an e-mail address",
}

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def check_document(data: Any) -> list[Finding]:
    """Every problem in one resource document; an empty list means it is valid."""
    return validate_document(data)[0]


def validate_document(data: Any) -> tuple[list[Finding], dict[str, Any] | None]:
    """Problems in one document, and when there are none its normalised form.

    The normalised form is what plans compare: every key spelled as in YAML, defaults filled
    in, unset optional keys left out. So writing a default explicitly is not a change.
    """
    if not isinstance(data, dict):
        return [Finding((), f"a resource must be a mapping, got {describe(data)}")], None
    envelope = _check_envelope(data)
    if envelope:
        return envelope, None
    model = KINDS[data["kind"]]
    from pydantic import ValidationError

    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        return [explain(error, model) for error in exc.errors(include_url=False)], None
    return [], resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_envelope(data: dict[str, Any]) -> list[Finding]:
    findings = []
    version = data.get("apiVersion")
    if "apiVersion" not in data:
        findings.append(Finding((), f'missing required field "apiVersion" (use {API_VERSION})'))
    elif version != API_VERSION:
        findings.append(
            Finding(
                ("apiVersion",),
                f"unsupported apiVersion {_show(version)}: this Cloned reads {API_VERSION}",
            )
        )
    kind = data.get("kind")
    if "kind" not in data:
        findings.append(Finding((), f'missing required field "kind" (one of: {", ".join(KINDS)})'))
    elif not isinstance(kind, str) or kind not in KINDS:
        guess = did_you_mean(str(kind), list(KINDS))
        findings.append(
            Finding(("kind",), f"unknown kind {_show(kind)}{guess}; kinds: {', '.join(KINDS)}")
        )
    return findings


def explain(error: Any, model: type[Any]) -> Finding:
    """One pydantic error as a Finding: where, and what is wrong in the words of YAML."""
    loc: Path = tuple(part for part in error["loc"] if part != "[key]")
    kind, ctx = error["type"], error.get("ctx") or {}
    where = dotted(loc)
    on_key = "[key]" in error["loc"]
    if kind == "missing":
        parent = dotted(loc[:-1])
        prefix = f"{parent}: " if parent else ""
        return Finding(loc[:-1], f'{prefix}missing required field "{loc[-1]}"', key=True)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        guess = did_you_mean(str(loc[-1]), allowed)
        listing = f"; allowed: {', '.join(allowed)}" if allowed and not guess else ""
        parent = dotted(loc[:-1])
        prefix = f"{parent}: " if parent else ""
        return Finding(loc, f'{prefix}unknown field "{loc[-1]}"{guess}{listing}', key=True)
    if kind in _TYPE_NAMES:
        got = describe(error["input"])
        return Finding(loc, f"{where}: expected {_TYPE_NAMES[kind]}, got {got}")
    if kind == "literal_error" and isinstance(error["input"], bool):
        expected = str(ctx.get("expected", "")).replace("True", "true").replace("False", "false")
        return Finding(loc, f"{where}: expected {expected}, got {describe(error['input'])}")
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        options = re.findall(r'"([^"]*)"', expected)
        guess = did_you_mean(str(error["input"]), options)
        return Finding(loc, f"{where}: {_show(error['input'])} is not one of {expected}{guess}")
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")), f"to match {ctx.get('pattern')}")
        return Finding(
            loc, f"{where}: {_show(error['input'])} is not valid: expected {hint}", key=on_key
        )
    if kind in ("too_short", "too_long"):
        bound, noun = (
            (ctx.get("min_length"), "at least")
            if kind == "too_short"
            else (ctx.get("max_length"), "at most")
        )
        unit = "character" if isinstance(error["input"], str) else "item"
        return Finding(loc, f"{where}: needs {noun} {bound} {unit}{'s' if bound != 1 else ''}")
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return Finding(loc, f"{where}: {message}" if where else message, key=bool(loc))
    message = str(error["msg"]).replace("Input should be", "must be")
    message = message[0].lower() + message[1:] if message else message
    return Finding(loc, f"{where}: {message}" if where else message)


def describe(value: Any) -> str:
    """A short, type-first description of a YAML value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {_show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _show(value: Any) -> str:
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f'"{text}"'


def _allowed_keys(model: type[Any], loc: Path) -> list[str]:
    """The keys the model accepts at `loc`, found by walking the model's annotations."""
    current: Any = model
    for part in loc:
        current = _step_into(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    fields = getattr(current, "model_fields", None)
    if not fields:
        return []
    return [field.alias or name for name, field in fields.items()]


def _step_into(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    fields = getattr(annotation, "model_fields", None)
    if fields is not None and isinstance(part, str):
        for name, field in fields.items():
            if (field.alias or name) == part:
                return field.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
