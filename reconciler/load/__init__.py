"""Loading desired state: find the files under `.cloned/`, parse, validate, cross-check.

The fast path (`workspace.load_desired_state`) reads bytes, hashes them and, on a cache hit,
never imports ruamel.yaml or pydantic. Positions (line and column) are only computed on the
error path, by re-parsing the offending file in ruamel's round-trip mode (`positions.py`).
"""
