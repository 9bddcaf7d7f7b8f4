"""A connector that probes its own confinement: a stdlib MCP server (newline-delimited JSON-RPC
over stdio, like tiny_mcp.py) with one tool, `probe`, whose arguments say what to try:

- `{"read": PATH}`: read a file; `{"write": PATH}`: create one; `{"list": PATH}`: list a folder;
- `{"connect": [HOST, PORT]}`: open a TCP connection (past any proxy);
- `{"fetch": URL}`: GET it with urllib, which uses `HTTP(S)_PROXY` as a well-behaved client does
  (and follows redirects): `{"status": N, "body": TEXT}`;
- `{"env": true}`: the names of its environment variables.

It answers one text block of JSON: `{"ok": true, "value": ...}` or `{"ok": false, "error": ...}`.
"""

from __future__ import annotations

from tests.fakes.stdio_loop import LOOP

SERVER = (
    """\
import json, os, socket, sys, urllib.error, urllib.request

def probe(args):
    if "read" in args:
        with open(args["read"], encoding="utf-8", errors="replace") as file:
            return file.read()
    if "write" in args:
        with open(args["write"], "w", encoding="utf-8") as file:
            file.write("written by the probe")
        return "written"
    if "list" in args:
        return sorted(os.listdir(args["list"]))
    if "connect" in args:
        host, port = args["connect"]
        with socket.create_connection((host, int(port)), timeout=2):
            return "connected"
    if "fetch" in args:
        try:
            with urllib.request.urlopen(args["fetch"], timeout=5) as reply:
                return {"status": reply.status, "body": reply.read().decode()}
        except urllib.error.HTTPError as exc:
            return {"status": exc.code, "body": exc.read().decode()}
    if "env" in args:
        return sorted(os.environ)
    raise ValueError("nothing to probe")

def call(args):
    try:
        return {"ok": True, "value": probe(args)}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}

def answer(request):
    method = request.get("method")
    if method == "initialize":
        return {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "probe", "version": "1"}}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [{"name": "probe", "description": "Try one thing and say what happened.",
                           "inputSchema": {"type": "object"}}]}
    if method == "tools/call":
        params = request.get("params") or {}
        text = json.dumps(call(params.get("arguments") or {}))
        return {"content": [{"type": "text", "text": text}]}
    raise KeyError(method)

"""
    + LOOP
)

MANIFEST = (
    "name: probe\nversion: 0.1.0\npublisher: team\nrun: {command: [python, server.py]}\n"
    "tools: [probe]\n"
)


def connector_yaml(profile: str | None = None, hosts: tuple[str, ...] = ()) -> str:
    """The Connector resource for the probe, with `spec.sandbox.profile` when given and
    `hosts` allowed over plain http."""
    sandbox = f"  sandbox: {{profile: {profile}}}\n" if profile else ""
    listed = ", ".join(f'"{host}"' for host in hosts)
    egress = f"  egress: {{allowHosts: [{listed}], insecureHosts: [{listed}]}}\n" if hosts else ""
    return (
        "apiVersion: cloned/v1\nkind: Connector\nmetadata: {name: probe}\nspec:\n"
        "  source: {path: tools/probe}\n  version: 0.1.0\n  publisher: team\n" + sandbox + egress
    )
