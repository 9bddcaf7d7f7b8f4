"""Test doubles of the world outside Cloned: a clock now; MCP servers, a vault and a model
endpoint as later issues need them (docs/architecture.md)."""
