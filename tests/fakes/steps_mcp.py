"""A connector for pipeline tests: a stdlib MCP server (newline-delimited JSON-RPC over stdio,
like tiny_mcp.py) whose tools answer deterministically and log each call they receive to
`calls.log` in its data folder, so a test can count what a run really sent:

- `step` (annotated `idempotentHint: true`): `{"n": N, "text": TEXT}` back as structured content,
  after sleeping `sleep` seconds when given;
- `send` (no hint: not idempotent): the same, for steps that must not be re-sent blindly;
- `fail`: a tool error.
"""

from __future__ import annotations

from tests.fakes.stdio_loop import LOOP

SERVER = (
    """\
import json, os, sys, time

DATA = os.environ["CLONED_CONNECTOR_DATA"]
TOOLS = [
    {"name": "step", "description": "Answer a step.", "inputSchema": {"type": "object"},
     "annotations": {"idempotentHint": True}},
    {"name": "send", "description": "Send something once.", "inputSchema": {"type": "object"}},
    {"name": "fail", "description": "Always fail.", "inputSchema": {"type": "object"}},
]

def call(name, args):
    with open(os.path.join(DATA, "calls.log"), "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": name, "args": args}, sort_keys=True) + "\\n")
    if args.get("sleep"):
        time.sleep(float(args["sleep"]))
    if name == "fail":
        return {"content": [{"type": "text", "text": "it failed on purpose"}], "isError": True}
    out = {"n": args.get("n"), "text": str(args.get("text", ""))}
    return {"content": [{"type": "text", "text": json.dumps(out, sort_keys=True)}],
            "structuredContent": out}

def answer(request):
    method = request.get("method")
    if method == "initialize":
        return {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "steps", "version": "1"}}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        params = request.get("params") or {}
        return call(params.get("name"), params.get("arguments") or {})
    raise KeyError(method)

"""
    + LOOP
)

MANIFEST = """\
name: steps
version: 0.1.0
publisher: team
run: {command: [python, server.py]}
tools: [step, send, fail]
"""

CONNECTOR = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: steps}
spec:
  source: {path: tools/steps}
  version: 0.1.0
  publisher: team
"""


def pipeline(steps: str, *, name: str = "report", outputs: str = "") -> str:
    """A Pipeline `name` with input `topic` and the YAML list `steps` (indented 4)."""
    return (
        "apiVersion: cloned/v1\nkind: Pipeline\n"
        f"metadata: {{name: {name}}}\nspec:\n"
        "  inputs:\n    topic: {type: string, required: true}\n    n: {type: integer, default: 1}\n"
        f"  steps:\n{steps}" + (f"  outputs:\n{outputs}" if outputs else "")
    )


def run(topic: str, *, name: str = "weekly", pipeline_name: str = "report") -> str:
    return (
        "apiVersion: cloned/v1\nkind: Run\n"
        f"metadata: {{name: {name}}}\nspec:\n  pipeline: {pipeline_name}\n"
        f"  inputs: {{topic: {topic}}}\n"
    )
