"""`cloned gateway [--listen HOST:PORT]` and `cloned gateway token [--rotate]`: the MCP server
agents connect to (reconciler.governed.gateway) and the bearer token its HTTP form requires."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode, UsageError

_LISTEN = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True)
class Served:
    """A gateway that served until it was stopped."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"stopped": True}


@dataclass(frozen=True)
class GatewayToken:
    """The gateway's bearer token and where it is kept."""

    token: str
    path: Path
    rotated: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "path": str(self.path), "rotated": self.rotated}


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) as (host, port); anything else, a non-loopback host
    or a port out of range is a usage error naming --listen."""
    from reconciler.runtime.server import check_listen

    match = _LISTEN.match(value.strip())
    if match is None:
        raise UsageError(
            f"--listen: {value!r} is not HOST:PORT", hint="for example --listen 127.0.0.1:8765"
        )
    host, port = match["host"].strip("[]"), int(match["port"])
    check_listen(host, port)
    return host, port


def gateway(
    *, path: Path, listen: str | None, on_ready: Callable[[str], None] | None = None
) -> Served:
    """Serve the applied state's tools over stdio, or over HTTP on loopback with `listen`,
    until stopped."""
    from reconciler.governed import gateway_token
    from reconciler.governed.gateway import run_gateway
    from reconciler.load.files import find_root

    address = parse_listen(listen) if listen is not None else None
    root = find_root(path)
    token = gateway_token.read_or_create() if address is not None else None
    if token is not None:
        from reconciler.redact import active

        # Whatever a connector sends back or a log line holds, the token is masked in it.
        active().register(token)
    run_gateway(root, listen=address, on_ready=on_ready, token=token)
    return Served()


def token(*, rotate: bool) -> GatewayToken:
    """The gateway's bearer token (created on first use); `rotate` replaces it."""
    from reconciler.governed import gateway_token
    from reconciler.home import gateway_token_path

    value = gateway_token.rotate() if rotate else gateway_token.read_or_create()
    return GatewayToken(value, gateway_token_path(), rotate)
