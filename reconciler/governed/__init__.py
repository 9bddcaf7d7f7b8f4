"""The one governed call path (allowed, pinned, valid, budgets, limits, approval, redaction,
audit) and `cloned gateway`, composed from the runtime below and policy, approvals and audit.
Reads only the applied state, never uncommitted YAML."""
