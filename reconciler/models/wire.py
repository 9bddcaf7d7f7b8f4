"""The OpenAI chat-completions wire format, both ways: the request body `ChatModel` sends and
the strict reading of the answer (specs/models.md, "Request" and "Response").

Pure functions, no I/O. Reading is strict on purpose: a field of the wrong type, a missing
usage or an empty answer is `ModelFailed("invalid")`, never a guess, so a misbehaving endpoint
cannot make a step record an output or a cost that is not what it sent. Error messages name
the field that was wrong, never its value (the answer goes to no log)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.models.types import Completion, Message, ModelFailed, ToolCall, ToolSpec, Usage

MAX_USAGE = 10**9
"""The most tokens one answer may report in either count: a thousand times any context window,
and far below what the usage tables' integers hold. Beyond it the report is not believed."""
SCHEMA_NAME = "output"
"""The `json_schema.name` of structured output (OpenAI requires one; the step has no other)."""


def request_body(
    model: str,
    messages: Sequence[Message],
    *,
    max_tokens: int,
    tools: Sequence[ToolSpec] = (),
    schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The POST body: model, messages, max_tokens, tools and response_format when given."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(message) for message in messages],
        "max_tokens": max_tokens,
    }
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters or {"type": "object", "properties": {}},
                },
            }
            for tool in tools
        ]
    if schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": dict(schema)},
        }
    return body


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


class _Reader:
    """Reads one answer, naming where it deviates (`where` is a JSON path without values)."""

    def __init__(self, label: str) -> None:
        self._label = label

    def fail(self, where: str, wanted: str) -> ModelFailed:
        return ModelFailed("invalid", f"{self._label}: answer {where}: expected {wanted}")

    def object(self, node: Any, where: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(where, "an object")
        return node

    def string(self, node: Mapping[str, Any], key: str, where: str) -> str:
        value = node.get(key)
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", "a string")
        return value

    def count(self, node: Mapping[str, Any], key: str, where: str) -> int:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_USAGE:
            raise self.fail(f"{where}.{key}", f"an integer from 0 to {MAX_USAGE:,}")
        return value


def parse_completion(body: bytes, label: str) -> Completion:
    """The completion in a 200 answer's `body`; `ModelFailed("invalid")` for any deviation."""
    read = _Reader(label)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise read.fail("body", "JSON") from None
    root = read.object(document, "$")
    choices = root.get("choices")
    if not isinstance(choices, list) or not choices:
        raise read.fail("$.choices", "a non-empty list")
    choice = read.object(choices[0], "$.choices[0]")
    message = read.object(choice.get("message"), "$.choices[0].message")
    if message.get("role", "assistant") != "assistant":
        raise read.fail("$.choices[0].message.role", '"assistant"')
    text = message.get("content")
    if text is not None and not isinstance(text, str):
        raise read.fail("$.choices[0].message.content", "a string or null")
    calls = _tool_calls(read, message.get("tool_calls"))
    if text is None and not calls:
        raise read.fail("$.choices[0].message", "content or tool_calls")
    usage = read.object(root.get("usage"), "$.usage")
    return Completion(
        text=text,
        tool_calls=calls,
        usage=Usage(
            read.count(usage, "prompt_tokens", "$.usage"),
            read.count(usage, "completion_tokens", "$.usage"),
        ),
        finish_reason=read.string(choice, "finish_reason", "$.choices[0]"),
        model=read.string(root, "model", "$"),
    )


def _tool_calls(read: _Reader, node: Any) -> tuple[ToolCall, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        raise read.fail("$.choices[0].message.tool_calls", "a list")
    calls = []
    for index, item in enumerate(node):
        where = f"$.choices[0].message.tool_calls[{index}]"
        call = read.object(item, where)
        if call.get("type", "function") != "function":
            raise read.fail(f"{where}.type", '"function"')
        function = read.object(call.get("function"), f"{where}.function")
        calls.append(
            ToolCall(
                id=read.string(call, "id", where),
                name=read.string(function, "name", f"{where}.function"),
                arguments=read.string(function, "arguments", f"{where}.function"),
            )
        )
    return tuple(calls)


def check_output(text: str | None, schema: Mapping[str, Any], label: str) -> None:
    """Structured output must be JSON matching `schema`; `ModelFailed("schema")` names the
    first failing path and the schema keyword, never the value there."""
    import jsonschema
    from jsonschema import validators

    if text is None:
        raise ModelFailed("schema", f"{label}: structured output expected, the model sent none")
    try:
        value = json.loads(text)
    except ValueError:
        raise ModelFailed("schema", f"{label}: structured output is not JSON") from None
    cls = validators.validator_for(dict(schema), default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(cls(dict(schema)).iter_errors(value))
    if error is not None:
        where = "$" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        rule = "/".join(str(part) for part in error.schema_path)
        raise ModelFailed(
            "schema", f"{label}: structured output at {where} does not match the schema ({rule})"
        )
