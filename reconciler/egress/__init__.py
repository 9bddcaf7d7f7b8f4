"""Egress and isolation for connector processes, beside the runtime and independent of it: the
bubblewrap sandbox every stdio connector starts in (`sandbox.py`), and the allow-list and address
rules SafeFetch and the egress proxy share. It knows commands, paths and hosts, never MCP."""
