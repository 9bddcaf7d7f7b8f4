"""The serving loop the standard-library MCP servers of tests/fakes share (probe_mcp,
steps_mcp, canary_mcp): newline-delimited JSON-RPC over stdio, each request answered by the
server's `answer(request)`; an unknown method (`KeyError`) is -32601 and a `RuntimeError` the
server raises is the server's own error, -32000 with its message. Appended to a server's source,
which must import json and sys and define `answer`."""

from __future__ import annotations

LOOP = """
for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue
    try:
        reply = {"jsonrpc": "2.0", "id": request["id"], "result": answer(request)}
    except KeyError:
        reply = {"jsonrpc": "2.0", "id": request["id"],
                 "error": {"code": -32601, "message": "method not found"}}
    except RuntimeError as exc:
        reply = {"jsonrpc": "2.0", "id": request["id"],
                 "error": {"code": -32000, "message": str(exc)}}
    sys.stdout.write(json.dumps(reply) + "\\n")
    sys.stdout.flush()
"""
