"""notes: a first-party MCP server over stdio, written with the standard library only.

Speaks newline-delimited JSON-RPC 2.0 (the MCP stdio transport): `initialize` (protocol
version 2025-06-18, tools capability), `notifications/initialized`, `ping`, `tools/list` and
`tools/call`; any other method is error -32601. Notes are UTF-8 files `<name>.txt` in the
folder named by the environment variable CLONED_CONNECTOR_DATA, written atomically; nothing
outside that folder is touched.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = "2025-06-18"
SERVER_INFO = {"name": "notes", "version": "0.1.0"}
DATA_ENV = "CLONED_CONNECTOR_DATA"
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_TEXT = 64 * 1024
MAX_LINE = 1024 * 1024

NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": NAME.pattern,
    "description": "Lower-case letters, digits and dashes; at most 64 characters.",
}
TOOLS: list[dict[str, Any]] = [
    {
        "name": "add_note",
        "title": "Add a note",
        "description": "Save a new note under a name; an existing note is never overwritten.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "name": NAME_SCHEMA,
                "text": {"type": "string", "maxLength": MAX_TEXT, "description": "The note."},
            },
            "required": ["name", "text"],
            "additionalProperties": False,
        },
    },
    {
        "name": "list_notes",
        "title": "List notes",
        "description": "The names of all notes, sorted, one per line.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    {
        "name": "read_note",
        "title": "Read a note",
        "description": "The text of the note with this name.",
        "inputSchema": {
            "type": "object",
            "properties": {"name": NAME_SCHEMA},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
]


class RpcError(Exception):
    """A JSON-RPC error answered to the client."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class ToolFailed(Exception):
    """A tool that ran and failed: answered as a result with isError."""


def data_folder() -> Path:
    value = os.environ.get(DATA_ENV, "")
    if not value:
        raise ToolFailed(f"{DATA_ENV} is not set: the connector has no data folder")
    folder = Path(value)
    if not folder.is_dir():
        raise ToolFailed(f"{DATA_ENV} ({value}) is not a folder")
    return folder


def check_arguments(tool: str, arguments: Any) -> dict[str, str]:
    """The arguments, checked against the tool's input schema (strings only here)."""
    schema = next(t["inputSchema"] for t in TOOLS if t["name"] == tool)
    if not isinstance(arguments, dict):
        raise RpcError(-32602, "arguments must be an object")
    unknown = set(arguments) - set(schema["properties"])
    missing = set(schema.get("required", [])) - set(arguments)
    if unknown or missing:
        raise RpcError(-32602, f"unknown {sorted(unknown)} or missing {sorted(missing)} arguments")
    for key, value in arguments.items():
        if not isinstance(value, str):
            raise RpcError(-32602, f"{key} must be a string")
    if "name" in arguments and not NAME.match(arguments["name"]):
        raise RpcError(-32602, f"name must match {NAME.pattern}")
    if len(arguments.get("text", "")) > MAX_TEXT:
        raise RpcError(-32602, f"text is longer than {MAX_TEXT} characters")
    return arguments


def add_note(name: str, text: str) -> str:
    folder = data_folder()
    target = folder / f"{name}.txt"
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(temp, target)  # fails if the note exists: never overwrite
    except FileExistsError:
        raise ToolFailed(f"a note named {name} already exists") from None
    finally:
        os.unlink(temp)
    return f"saved note {name}"


def list_notes() -> str:
    names = sorted(p.stem for p in data_folder().glob("*.txt") if NAME.match(p.stem))
    return "\n".join(names) if names else "(no notes)"


def read_note(name: str) -> str:
    path = data_folder() / f"{name}.txt"
    if not path.is_file() or path.is_symlink():
        raise ToolFailed(f"no note named {name}")
    return path.read_text(encoding="utf-8")


def call_tool(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        raise RpcError(-32602, "tools/call needs a tool name")
    tool = params["name"]
    if tool not in {t["name"] for t in TOOLS}:
        raise RpcError(-32602, f"unknown tool: {tool}")
    arguments = check_arguments(tool, params.get("arguments", {}))
    handlers: dict[str, Callable[..., str]] = {
        "add_note": add_note,
        "list_notes": list_notes,
        "read_note": read_note,
    }
    try:
        text = handlers[tool](**arguments)
    except ToolFailed as exc:
        return {"content": [{"type": "text", "text": str(exc)}], "isError": True}
    return {"content": [{"type": "text", "text": text}], "isError": False}


def answer(method: str, params: Any) -> Any:
    if method == "initialize":
        return {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        return call_tool(params)
    raise RpcError(-32601, f"method not found: {method}")


def handle(line: str) -> dict[str, Any] | None:
    """The response to one line, or None for a notification."""
    try:
        message = json.loads(line)
    except ValueError:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        error = {"code": -32600, "message": "invalid request"}
        ident = message.get("id") if isinstance(message, dict) else None
        return {"jsonrpc": "2.0", "id": ident, "error": error}
    if "id" not in message:
        return None  # notifications, notifications/initialized included, get no answer
    try:
        result = answer(message["method"], message.get("params"))
    except RpcError as exc:
        error = {"code": exc.code, "message": str(exc)}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            response: dict[str, Any] | None = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "message too large"},
            }
        else:
            response = handle(line)
        if response is not None:
            sys.stdout.write(json.dumps(response) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
