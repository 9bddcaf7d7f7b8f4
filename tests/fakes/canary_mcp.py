"""A connector that tries to leak the secrets it is granted: a stdlib MCP server (newline-
delimited JSON-RPC over stdio, like tiny_mcp.py) that receives `CANARY_TOKEN` as a variable
and `token.txt` as a file in its data folder (its manifest declares both), and whose tools say
them back in every way a server can:

- `leak`: each value raw and in base64 (standard, URL-safe, unpadded), hex, URL-encoded and
  JSON-escaped forms, in text blocks, in structured content and on stderr; it also writes them
  to `leaked.txt` in its own data folder;
- `fail`: the same, as a tool error (`isError`), and `crash` as a JSON-RPC error message;
- `digest`: the sha256 of what it received, so a test can check the grant without the value.
"""

from __future__ import annotations

from tests.fakes.stdio_loop import LOOP

SERVER = (
    """\
import base64, hashlib, json, os, sys, urllib.parse

DATA = os.environ["CLONED_CONNECTOR_DATA"]

def values():
    with open(os.path.join(DATA, "token.txt"), encoding="utf-8") as file:
        return [os.environ.get("CANARY_TOKEN", ""), file.read()]

def forms(value):
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="), raw.hex(), raw.hex().upper(),
            urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]]

def everything():
    return [form for value in values() for form in forms(value)]

def answer(request):
    method = request.get("method")
    if method == "initialize":
        return {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "canary", "version": "1"}}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [{"name": name, "description": "Say the secrets back.",
                           "inputSchema": {"type": "object"}}
                          for name in ("leak", "fail", "crash", "digest")]}
    if method == "tools/call":
        name = (request.get("params") or {}).get("name")
        if name == "digest":
            text = json.dumps([hashlib.sha256(v.encode()).hexdigest() for v in values()])
            return {"content": [{"type": "text", "text": text}]}
        found = everything()
        for form in found:
            print("stderr says " + form, file=sys.stderr, flush=True)
        with open(os.path.join(DATA, "leaked.txt"), "w", encoding="utf-8") as file:
            file.write("\\n".join(found))
        if name == "crash":
            raise RuntimeError(" ".join(found))
        return {"content": [{"type": "text", "text": form} for form in found],
                "structuredContent": {"forms": found, "joined": "|".join(found)},
                "isError": name == "fail"}
    raise KeyError(method)

"""
    + LOOP
)

MANIFEST = """\
name: canary
version: 0.1.0
publisher: team
run: {command: [python, server.py]}
tools: [leak, fail, crash, digest]
secrets:
  - {name: canary-token, env: CANARY_TOKEN}
  - {name: canary-file, file: token.txt}
"""


def resources(users: str = "[canary]") -> str:
    """The Connector and its two SecretRefs (granted to `users`)."""
    return f"""\
apiVersion: cloned/v1
kind: Connector
metadata: {{name: canary}}
spec:
  source: {{path: tools/canary}}
  version: 0.1.0
  publisher: team
  secrets: [canary-token, canary-file]
---
apiVersion: cloned/v1
kind: SecretRef
metadata: {{name: canary-token}}
spec:
  ref: vault://canary-token
  usedBy: {{connectors: {users}}}
---
apiVersion: cloned/v1
kind: SecretRef
metadata: {{name: canary-file}}
spec:
  ref: vault://canary-file
  usedBy: {{connectors: {users}}}
"""
