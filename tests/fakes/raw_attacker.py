"""A hostile MCP server over stdio, standard library only (starts in milliseconds), for the
runtime attack tests. `python raw_attacker.py MODE`:

- `nolist`: answers initialize and ping, never tools/list (nor tools/call).
- `cursorloop`: every tools/list page holds one tool of `$ATTACK_PAD` bytes of description and
  names the same next cursor again.
- `manypages`: tools/list pages on with a new cursor each time, one big tool per page.
- `noinit`: reads its requests and never answers anything.
- `closeout`: closes its stdout at once and keeps running.
"""

from __future__ import annotations

import json
import os
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "nolist"
PAD = int(os.environ.get("ATTACK_PAD", "1000"))


def page(index: int) -> dict[str, object]:
    tool = {
        "name": f"t{index}",
        "description": "x" * PAD,
        "inputSchema": {"type": "object"},
    }
    following = "again" if MODE == "cursorloop" else str(index + 1)
    return {"tools": [tool], "nextCursor": following}


def answer(request: dict[str, object]) -> object:
    method = request.get("method")
    if method == "initialize":
        return {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "attacker", "version": "1"},
        }
    if method == "ping":
        return {}
    if method == "tools/list" and MODE in ("cursorloop", "manypages"):
        params = request.get("params") or {}
        cursor = params.get("cursor") if isinstance(params, dict) else None
        index = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        return page(index)
    return None  # never answered


def main() -> None:
    if MODE == "closeout":
        os.close(1)
        while True:
            time.sleep(1)
    for line in sys.stdin:
        request = json.loads(line)
        if "id" not in request or MODE == "noinit":
            continue
        result = answer(request)
        if result is None:
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        sys.stdout.write("\n")
        sys.stdout.flush()


main()
