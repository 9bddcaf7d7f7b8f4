"""The HTTP adapter: the only importer of httpx and httpcore (docs/architecture.md).

`safefetch.SafeFetch` is Cloned's HTTP client: the egress rules (`reconciler.egress`) on every
request and redirect hop, and the connection pinned to the checked address (`client.py`).
`errors.py` holds its errors, importable without loading httpx."""
