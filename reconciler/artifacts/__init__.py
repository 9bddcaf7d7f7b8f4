"""Run artifacts: content-addressed outputs and their signed provenance (issue 14).

`store` keeps the bytes (`.cloned/state/artifacts/sha256/HEX`), `provenance` builds a run's
in-toto Statement v1 with a SLSA Provenance v1 predicate, `dsse` signs it as a DSSE envelope
with the workspace's audit key, `publish` does all three for the runner, and `verify` checks
them again. A layer of its own between the runner and the audit log it signs with
(docs/architecture.md); specs/artifacts.md is the format.
"""
