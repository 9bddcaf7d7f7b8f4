"""The smallest honest MCP server for tests that install connectors: the standard library only,
newline-delimited JSON-RPC over stdio (initialize, ping, tools/list, tools/call echo), serving
the tools its package declares. Apply lists a connector's tools after installing it, so every
package a test installs must answer `tools/list`."""

from __future__ import annotations

TEMPLATE = """\
import json, sys
TOOLS = {tools!r}
def answer(request):
    method = request.get("method")
    if method == "initialize":
        return {{"protocolVersion": "2025-06-18", "capabilities": {{"tools": {{}}}},
                "serverInfo": {{"name": "tiny", "version": "1"}}}}
    if method == "ping":
        return {{}}
    if method == "tools/list":
        return {{"tools": [{{"name": name, "description": "The " + name + " tool.",
                            "inputSchema": {{"type": "object"}}}} for name in TOOLS]}}
    if method == "tools/call":
        params = request.get("params") or {{}}
        text = json.dumps(params.get("arguments") or {{}}, sort_keys=True)
        return {{"content": [{{"type": "text", "text": text}}]}}
    raise KeyError(method)
for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue
    try:
        reply = {{"jsonrpc": "2.0", "id": request["id"], "result": answer(request)}}
    except KeyError:
        reply = {{"jsonrpc": "2.0", "id": request["id"],
                 "error": {{"code": -32601, "message": "method not found"}}}}
    sys.stdout.write(json.dumps(reply) + "\\n")
    sys.stdout.flush()
{marker}"""


def server_source(tools: list[str], marker: str = "") -> str:
    """A server.py serving `tools`; `marker` (a comment line) tells versions apart."""
    return TEMPLATE.format(tools=list(tools), marker=marker)
