"""The HTTP client adapter: the only importer of httpx (docs/architecture.md). SafeFetch's host
and address rules (the egress issue) wrap it; today it serves registry downloads with size and
time caps."""
