"""Pydantic models of the desired-state resources (SPEC section 2).

`schemas/` holds the JSON Schema of every kind, generated from these models by
`python -m reconciler.model.schemagen`; a test keeps the two identical and checks that both
accept and reject the same samples.
"""
