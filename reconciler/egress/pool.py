"""One egress proxy per running connector, as the gateway runs them.

The gateway starts a connector's proxy just before the connector (the sandbox binds its socket,
`.cloned/state/runtime/egress/NAME.sock`, into the connector's namespace) and closes it with the
connector; `aclose` closes every one when the gateway stops. Every proxy shares the pool's
resolver, audit callback and caps; each has its own connector's rules. Starting a connector that
already has a proxy replaces it, so rules changed by an apply take effect on the next start."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.atomic import STATE_DIR
from reconciler.egress.proxy import EgressProxy, OnConnection, Resolver, system_resolver
from reconciler.egress.rules import EgressRules
from reconciler.errors import ClonedError
from reconciler.model.names import NAME_PATTERN

EGRESS_DIR = STATE_DIR / "runtime" / "egress"


def socket_path(root: Path, connector: str) -> Path:
    """Where connector `connector`'s proxy listens: `.cloned/state/runtime/egress/NAME.sock`."""
    if not re.match(NAME_PATTERN, connector):
        raise ClonedError(f"{connector!r} is not a connector name")
    return root / EGRESS_DIR / f"{connector}.sock"


class ProxyPool:
    """The running proxies by connector name (see the module)."""

    def __init__(
        self,
        root: Path,
        *,
        resolver: Resolver = system_resolver,
        on_connection: OnConnection | None = None,
        allow_loopback_for: Iterable[str] = (),
        **caps: Any,
    ) -> None:
        self._root = root
        self._resolver = resolver
        self._on_connection = on_connection
        self._loopback_ok = tuple(allow_loopback_for)
        self._caps = caps
        self._proxies: dict[str, EgressProxy] = {}

    async def start(self, connector: str, rules: EgressRules) -> Path:
        """Start (or restart) `connector`'s proxy with `rules`; the socket's path."""
        await self.close(connector)
        proxy = EgressProxy(
            connector,
            rules,
            path=socket_path(self._root, connector),
            resolver=self._resolver,
            on_connection=self._on_connection,
            allow_loopback_for=self._loopback_ok,
            **self._caps,
        )
        await proxy.start()
        self._proxies[connector] = proxy
        return proxy.path

    async def close(self, connector: str) -> None:
        """Close `connector`'s proxy, if it runs (its open connections end)."""
        proxy = self._proxies.pop(connector, None)
        if proxy is not None:
            await proxy.close()

    async def aclose(self) -> None:
        """Close every proxy."""
        for name in list(self._proxies):
            await self.close(name)

    def running(self) -> tuple[str, ...]:
        """The connectors whose proxy is listening, sorted."""
        return tuple(sorted(self._proxies))
