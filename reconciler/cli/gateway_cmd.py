"""`cloned gateway [--listen HOST:PORT]` and `cloned gateway token [--rotate]`."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="The MCP server agents connect to: the applied state's allowed, pinned tools of every "
    "enabled connector, each call governed. Over stdio, or streamable HTTP on loopback with "
    "--listen. See docs/gateway.md for client configurations.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


@app.callback()
def gateway(
    ctx: typer.Context,
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="HOST:PORT",
        help="Serve streamable HTTP on this loopback address (127.0.0.1, localhost or [::1]; "
        "port 0 picks a free one) instead of stdio. Requests need the bearer token of "
        "`cloned gateway token`.",
    ),
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
) -> int:
    """Serve the gateway until stopped (stdin closed, SIGTERM or SIGINT).

    Without --listen it speaks MCP over stdin and stdout, as an MCP client's configuration
    starts it, and writes nothing else to stdout. With --listen it prints one line to stderr,
    `gateway listening on http://127.0.0.1:PORT/mcp`, and serves until stopped. It lists tools
    from the pins without starting any connector, and follows the applied state (`cloned
    apply`), never uncommitted YAML.

    Example:

    \b
      cloned gateway --listen 127.0.0.1:8765
      gateway listening on http://127.0.0.1:8765/mcp
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from reconciler.usecases.gateway import gateway as run

    def ready(url: str) -> None:
        say(f"gateway listening on {url}", err=True)

    return int(run(path=path, listen=listen, on_ready=ready).exit_code)


@app.command("token")
def token(
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace the token (clients holding the old one get 401)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Print the HTTP gateway's bearer token ($CLONED_HOME/gateway/token, made on first use).

    Example:

    \b
      curl -H "Authorization: Bearer $(cloned gateway token)" ...
    """
    from reconciler.usecases.gateway import token as run

    result = run(rotate=rotate)
    if as_json:
        print_json(result.to_json())
    else:
        print(result.token)
    return int(result.exit_code)
