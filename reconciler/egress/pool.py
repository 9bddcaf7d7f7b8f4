"""The egress proxies one process runs for the connectors it starts (the gateway, `cloned
connectors call`, a pipeline run).

Each process has a scope folder of its own, `.cloned/state/runtime/egress/PID/`, and in it one
folder per connector holding its proxy's socket: `PID/NAME/proxy.sock`. The sandbox binds the
connector's folder (not the socket file) read-only into the connector's namespace, so a proxy
restarted with new rules is reached by the connector already running, and no connector can see
another's socket, nor another process's. `ensure` starts a connector's proxy before the
connector starts, and restarts it when its rules changed (an apply); `aclose` closes every
proxy and removes the scope. Scopes left by a process that died are removed by the next pool.

Every proxy shares the pool's resolver, audit callback and caps; each has its own connector's
rules, and may reach on loopback exactly the local services those rules name with a port, on
that port (`EgressRules.local_services`, which the proxy reads from its rules), plus any hosts
the pool was given (tests)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.atomic import STATE_DIR
from reconciler.egress.proxy import EgressProxy, OnConnection, Resolver, system_resolver
from reconciler.egress.rules import EgressRules
from reconciler.errors import ClonedError
from reconciler.model.names import NAME_PATTERN
from reconciler.state.lock import pid_alive

EGRESS_DIR = STATE_DIR / "runtime" / "egress"
SOCKET = "proxy.sock"


def scope_folder(root: Path, scope: str) -> Path:
    """The folder of one process's proxies: `.cloned/state/runtime/egress/SCOPE/`."""
    if not scope.isdigit():
        raise ClonedError(f"{scope!r} is not a proxy scope (a process id)")
    return root / EGRESS_DIR / scope


def socket_path(root: Path, connector: str, scope: str) -> Path:
    """Where connector `connector`'s proxy of process `scope` listens."""
    if not re.match(NAME_PATTERN, connector):
        raise ClonedError(f"{connector!r} is not a connector name")
    return scope_folder(root, scope) / connector / SOCKET


class ProxyPool:
    """The running proxies of one process, by connector name (see the module)."""

    def __init__(
        self,
        root: Path,
        *,
        scope: str | None = None,
        resolver: Resolver = system_resolver,
        on_connection: OnConnection | None = None,
        allow_loopback_for: Iterable[str] = (),
        **caps: Any,
    ) -> None:
        self._root = root
        self._scope = scope if scope is not None else str(os.getpid())
        self._resolver = resolver
        self._on_connection = on_connection
        self._loopback_ok = tuple(allow_loopback_for)
        self._caps = caps
        self._proxies: dict[str, EgressProxy] = {}
        self._swept = False

    def socket(self, connector: str) -> Path:
        """Where `connector`'s proxy listens (or will)."""
        return socket_path(self._root, connector, self._scope)

    async def ensure(self, connector: str, rules: EgressRules) -> Path:
        """`connector`'s proxy, listening with `rules`: started when none runs, restarted when
        its rules differ; the socket's path."""
        running = self._proxies.get(connector)
        if running is not None and running.rules == rules:
            return running.path
        return await self.start(connector, rules)

    async def start(self, connector: str, rules: EgressRules) -> Path:
        """Start (or restart) `connector`'s proxy with `rules`; the socket's path."""
        if not self._swept:
            self._swept = True
            sweep(self._root, keep=self._scope)
        await self.close(connector)
        proxy = EgressProxy(
            connector,
            rules,
            path=self.socket(connector),
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
        """Close every proxy and remove this process's scope folder."""
        for name in list(self._proxies):
            await self.close(name)
        with contextlib.suppress(ClonedError):
            shutil.rmtree(scope_folder(self._root, self._scope), ignore_errors=True)

    def running(self) -> tuple[str, ...]:
        """The connectors whose proxy is listening, sorted."""
        return tuple(sorted(self._proxies))


def sweep(root: Path, *, keep: str) -> list[str]:
    """Remove the scope folders of processes that no longer run (a gateway killed with
    SIGKILL leaves its sockets behind); the scopes removed."""
    folder = root / EGRESS_DIR
    removed: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            if not entry.name.isdigit() or entry.name == keep or pid_alive(int(entry.name)):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return sorted(removed)
