"""Egress: which hosts and addresses a connector or a registry download may reach, and the
sandbox a connector process starts in.

The rules SafeFetch (`reconciler.http.safefetch`) and the egress proxy share: host spellings
made canonical (`hostnames`), addresses refused in every disguise (`addresses`), and the allow
and deny lists merged from a connector, the Workspace and the policy packs (`rules`). Pure
logic over the models, so every layer that fetches can use it (docs/architecture.md). Beside
them, `sandbox`: the bubblewrap command every stdio connector starts in (commands and paths,
never MCP; specs/sandbox.md); and the egress proxy a sandboxed connector reaches through
(`proxy`, `pool`, and `forwarder`, which runs inside the sandbox), stdlib asyncio, since it
forwards bytes."""
