"""The connector runtime: MCP client sessions to connector servers over stdio, their
supervision, tool-definition pins, and the MCP server `cloned gateway` speaks. The only package
that imports the `mcp` SDK; everything it hands up is plain data (`runtime/types.py`)."""
