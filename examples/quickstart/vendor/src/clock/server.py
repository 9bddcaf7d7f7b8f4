"""clock: a small MCP server over stdio (newline-delimited JSON-RPC 2.0), standard library only.

`now` gives the current time in a time zone, `convert` moves a time between zones and
`between` (from 1.1.0) the duration between two times. RELEASED lists the tools this
version serves; a tool not listed is unknown to clients.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

VERSION = "1.0.0"
RELEASED = ("now", "convert")
ZONE = {"type": "string", "description": "An IANA time zone such as Europe/Paris or UTC."}
TIME = {"type": "string", "description": "An ISO 8601 time, e.g. 2026-12-01T09:30:00+00:00."}
SCHEMAS: dict[str, dict[str, Any]] = {
    "now": {"zone": ZONE},
    "convert": {"time": TIME, "zone": ZONE},
    "between": {"start": TIME, "end": TIME},
}
DESCRIPTIONS = {
    "now": "The current time in a time zone (UTC when none is given).",
    "convert": "The same instant in another time zone.",
    "between": "The seconds from one time to another (negative when the end is earlier).",
}


def _zone(name: str | None) -> ZoneInfo | timezone:
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def call(tool: str, args: dict[str, Any]) -> str:
    """The text result of one tool call (ValueError: a message for the caller)."""
    if tool == "now":
        return datetime.now(_zone(args.get("zone"))).isoformat(timespec="seconds")
    if tool == "convert":
        return _time(str(args["time"])).astimezone(_zone(args.get("zone"))).isoformat()
    seconds = (_time(str(args["end"])) - _time(str(args["start"]))).total_seconds()
    return f"{seconds:g}"


def tools() -> list[dict[str, Any]]:
    """The definitions of the released tools."""
    return [
        {
            "name": name,
            "description": DESCRIPTIONS[name],
            "inputSchema": {
                "type": "object",
                "properties": SCHEMAS[name],
                "required": [key for key in SCHEMAS[name] if key != "zone"],
                "additionalProperties": False,
            },
        }
        for name in RELEASED
    ]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one JSON-RPC message (None for a notification)."""
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None
    params = request.get("params") or {}
    if method == "initialize":
        result: Any = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "clock", "version": VERSION},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": tools()}
    elif method == "tools/call" and params.get("name") in RELEASED:
        try:
            text, failed = call(params["name"], params.get("arguments") or {}), False
        except (ValueError, KeyError) as exc:
            text, failed = f"error: {exc}", True
        result = {"content": [{"type": "text", "text": text}], "isError": failed}
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        return {"jsonrpc": "2.0", "id": ident, "error": error}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def main() -> int:
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        response = answer(request) if isinstance(request, dict) else None
        if response is not None:
            sys.stdout.write(json.dumps(response) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
