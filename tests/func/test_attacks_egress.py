"""Attacks on a connector's egress proxy (issue 13): what a connector asks its proxy for, in
the spellings and combinations its reviewed YAML did not mean. Every socket is on 127.0.0.1 or
a Unix socket; nothing connects beyond loopback (`Seen.on_connect`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.egress.pool import ProxyPool
from tests.unit.egress_helpers import Resolver, Seen, echo, exchange, rules, serving, status


@pytest.fixture
def root() -> Iterator[Path]:
    """A short root: a socket's path must fit in sun_path (108 bytes) for the client."""
    folder = Path(tempfile.mkdtemp(prefix="eg-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("spelling", ["127.0.0.1", "127.1", "0x7f000001", "localhost"])
def test_a_local_service_allowed_on_one_port_opens_no_other_loopback_port(
    root: Path, spelling: str
) -> None:
    # The YAML consents to one local service (`127.0.0.1:MODEL`, say a model server); a
    # wildcard on another port (`*:OTHER`, or `*` on 443) never covers loopback. Together they
    # must not let the connector reach a loopback service on OTHER (the gateway's own port).
    async def main() -> tuple[int, Seen]:
        seen = Seen()
        resolver = Resolver({"localhost": [["127.0.0.1"]]})
        async with serving(echo) as other:
            allowed = rules("127.0.0.1:1", "localhost:1", f"*:{other}")
            pool = ProxyPool(root, scope="1", resolver=resolver, on_connection=seen.records.append)
            try:
                path = await pool.ensure("weather", allowed)
                head = f"CONNECT {spelling}:{other} HTTP/1.1\r\n\r\n"
                answer = await exchange(path, head.encode())
                await seen.record()
            finally:
                await pool.aclose()
        return status(answer), seen

    code, seen = asyncio.run(main())
    (record,) = seen.records
    assert code == 403 and record.decision == "refused", record
    assert "loopback" in record.reason
