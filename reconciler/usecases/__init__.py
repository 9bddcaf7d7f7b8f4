"""The use cases: one function per user action, the layer every front end calls.

The CLI (and the coming web API) parse their input, call exactly one function here with keyword
arguments, and render what it returns; they hold no logic of their own. Each function returns a
frozen, typed result that knows its JSON form (`to_json()`, the shape `--json` prints and the
web API will serve) and its exit code (`exit_code`). Expected failures that are not a result of
the action (no workspace, a git error, a held lock) are raised as `reconciler.errors` types for
the front end's one error boundary.
"""
