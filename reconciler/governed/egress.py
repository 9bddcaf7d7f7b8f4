"""The gateway's side of the egress proxy: each connector's rules from the applied state, and
each proxied connection as an `egress.connection` audit event.

The gateway runs one `EgressProxy` per connector (`egress.pool.ProxyPool`); `rules_for` gives
it the connector's merged rules (its `spec.egress`, the applied Workspace's defaults, every
active pack's `egress`), and `audit_connections` is the pool's `on_connection`: it commits each
connection's event through the gateway's `AuditSink`, redacted like every event
(specs/audit.md, "Egress")."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from reconciler.egress.proxy import Connection
from reconciler.egress.rules import EgressRules
from reconciler.governed.applied import AppliedView
from reconciler.governed.auditsink import AuditSink, Write
from reconciler.governed.calllog import event_write
from reconciler.redact import Redactor


def rules_for(view: AppliedView, connector: str) -> EgressRules:
    """The egress rules of applied connector `connector` under the active policy."""
    spec = view.connectors[connector].spec
    return EgressRules.for_connector(
        connector, spec.egress, view.workspace_spec.defaults, view.policy.pack_egress
    )


def connection_payload(connection: Connection) -> dict[str, Any]:
    """The payload of a connection's `egress.connection` event."""
    return {
        "connector": connection.connector,
        "host": connection.host,
        "port": connection.port,
        "address": connection.address,
        "method": connection.method,
        "decision": connection.decision,
        "reason": connection.reason,
        "rule": connection.rule,
        "bytes_up": connection.bytes_up,
        "bytes_down": connection.bytes_down,
        "seconds": round(connection.seconds, 3),
    }


def connection_event(connection: Connection, actor: str, redactor: Redactor) -> Write:
    """The write of one connection's `egress.connection` event."""
    subject = f"connector.{connection.connector}"
    return event_write(
        "egress.connection", subject, connection_payload(connection), actor, redactor
    )


def audit_connections(
    sink: AuditSink, redactor: Redactor, *, actor: str = "gateway"
) -> Callable[[Connection], Coroutine[Any, Any, None]]:
    """The proxies' `on_connection`: each connection's event committed through `sink`."""

    async def record(connection: Connection) -> None:
        await sink.commit([connection_event(connection, actor, redactor)])

    return record
