"""Signed connector packages: where a connector comes from and the proof that it is what it
claims (docs/architecture.md, the packages layer).

Sources (`spec.source` of a Connector): a TUF registry (`registry/`, python-tuf's ngclient),
a PyPI distribution from a hash lock (`pypi/`), a folder of the repository (`tree.py`) and a
builtin shipped in the wheel (`builtin.py`). Whatever the source, install verifies before it
unpacks (`archive.py`), and the result lands read-only in the content-addressed store
(`store.py`), which is verified again before anything is loaded. Every refusal is a
`PackageRefused` naming its reason (`refusal.py`)."""
