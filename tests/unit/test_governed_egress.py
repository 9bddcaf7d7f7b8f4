"""The gateway's side of the egress proxy: a connector's rules from the applied state (its own
list, the Workspace defaults, the packs' deny winning), and every proxied connection as an
`egress.connection` event in the audit log, committed through the gateway's sink."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.audit.log import events
from reconciler.audit.verify import verify
from reconciler.governed.applied import AppliedConnector, AppliedView
from reconciler.governed.auditsink import AuditSink
from reconciler.governed.egress import audit_connections, rules_for
from reconciler.model.kinds import ConnectorSpec
from reconciler.model.workspace import WorkspaceSpec
from reconciler.policy.engine import ActivePolicy
from reconciler.policy.rules import Pack
from reconciler.redact import Redactor
from reconciler.state.db import StateDB
from tests.unit.egress_helpers import LOOPBACK, TARGET, Resolver, Seen, echo, exchange, serving


def view(allow: list[str]) -> AppliedView:
    spec = ConnectorSpec.model_validate(
        {
            "source": {"path": "connectors/weather"},
            "version": "1.0.0",
            "publisher": "me",
            "egress": {"allowHosts": allow},
        }
    )
    workspace = WorkspaceSpec.model_validate({"defaults": {"egress": {"allowHosts": ["pypi.org"]}}})
    pack = Pack("corp", builtin=False, egress_deny_hosts=("*.evil.example",))
    return AppliedView(
        workspace="w",
        workspace_spec=workspace,
        policy=ActivePolicy(packs=(pack,)),
        connectors={"weather": AppliedConnector("weather", spec, {}, None, None)},
        budgets=(),
        digest="d",
    )


def test_a_connectors_rules_merge_its_list_the_defaults_and_the_packs() -> None:
    rules = rules_for(view(["api.example.org", "*.evil.example"]), "weather")
    assert rules.decide("https://api.example.org/").allowed
    assert rules.decide("https://pypi.org/simple/").allowed  # the Workspace default
    denied = rules.decide("https://x.evil.example/")
    assert not denied.allowed and denied.rule == "pack corp egress.denyHosts: *.evil.example"
    assert not rules.decide("http://api.example.org/").allowed


def test_each_proxied_connection_is_an_audit_event(tmp_path: Path) -> None:
    from reconciler.egress.proxy import EgressProxy

    StateDB.open(tmp_path).close()  # type: ignore[union-attr]

    async def main() -> None:
        sink = AuditSink(tmp_path)
        seen = Seen()
        record = audit_connections(sink, Redactor())

        async def both(connection):  # type: ignore[no-untyped-def]
            seen.records.append(connection)
            await record(connection)

        async with serving(echo) as port:
            allowed = [f"{TARGET}:{port}"]
            async with EgressProxy(
                "weather",
                rules_for(view(allowed), "weather"),
                path=tmp_path / "s" / "weather.sock",
                resolver=Resolver(dict(LOOPBACK)),
                on_connection=both,
                allow_loopback_for=[TARGET],
            ) as p:
                await exchange(p.path, f"CONNECT {TARGET}:{port} HTTP/1.1\r\n\r\nabc".encode())
                await exchange(p.path, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n")
                await seen.record(2)
        await sink.aclose()

    asyncio.run(main())
    with StateDB.open(tmp_path) as db:
        assert db is not None
        found = events(db, type="egress")
        assert verify(tmp_path, db).ok
    assert [e.type for e in found] == ["egress.connection", "egress.connection"]
    assert {e.subject for e in found} == {"connector.weather"}
    tunnel, metadata = (e.payload for e in found)
    assert tunnel["decision"] == "allowed" and tunnel["host"] == TARGET
    assert (tunnel["address"], tunnel["bytes_up"], tunnel["bytes_down"]) == ("127.0.0.1", 3, 3)
    assert tunnel["method"] == "CONNECT" and tunnel["rule"].endswith(f"{TARGET}:{tunnel['port']}")
    assert metadata["decision"] == "refused" and metadata["address"] is None
    assert "not in any allow list" in metadata["reason"]
