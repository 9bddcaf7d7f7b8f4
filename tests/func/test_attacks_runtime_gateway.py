"""Attacks on `cloned gateway --listen` from a local process that does not hold the token (any
user of the machine can reach a loopback port): connections held open by sending nothing or
headers a byte at a time (slowloris), a flood of connections, a huge body, a doubled Host."""

from __future__ import annotations

import socket

import anyio
import httpx2
import pytest

from reconciler.runtime import server
from tests.func.test_gateway_server import TOKEN, http_gateway, run, served


def closed_by_server(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_slow_header_connections_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "HEADER_SECONDS", 0.3)

    async def main() -> None:
        async with http_gateway(served("a__one")) as (_gateway, port):

            def attack() -> tuple[bool, bool]:
                idle = socket.create_connection(("127.0.0.1", port))
                slow = socket.create_connection(("127.0.0.1", port))
                slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-A: " % port)
                with idle, slow:
                    return closed_by_server(idle, 5), closed_by_server(slow, 5)

            assert await anyio.to_thread.run_sync(attack) == (True, True)
            # A proper request after that is still served.
            async with httpx2.AsyncClient() as http:
                answer = await http.post(f"http://127.0.0.1:{port}/mcp", json={})
                assert answer.status_code == 401

    run(main)


def test_a_connection_flood_is_cut_off_before_it_eats_the_gateways_descriptors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 8)

    async def main() -> None:
        async with http_gateway(served("a__one")) as (_gateway, port):

            def attack() -> int:
                held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
                try:
                    return sum(closed_by_server(sock, 0.15) for sock in held)
                finally:
                    for sock in held:
                        sock.close()

            assert await anyio.to_thread.run_sync(attack) >= 12

    run(main)


def test_a_huge_body_or_a_doubled_host_gets_nowhere() -> None:
    async def main() -> None:
        async with http_gateway(served("a__one")) as (_gateway, port), httpx2.AsyncClient() as http:
            url = f"http://127.0.0.1:{port}/mcp"
            good = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
            huge = await http.post(url, content=b"[" * (8 * 1024 * 1024), headers=good)
            assert huge.status_code == 413
            unauthenticated = await http.post(url, content=b"x" * (8 * 1024 * 1024))
            assert unauthenticated.status_code == 401

            def doubled() -> bytes:
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(
                        b"POST /mcp HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1:%d\r\n"
                        b"Authorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}"
                        % (port, TOKEN.encode())
                    )
                    sock.settimeout(5)
                    return sock.recv(4096)

            assert (await anyio.to_thread.run_sync(doubled)).split(b" ")[1] in (b"400", b"403")

    run(main)


def test_a_tool_named_with_the_separator_is_served_and_routed_as_itself() -> None:
    # Connector names cannot hold `_`, so the first `__` always ends the connector's name: a
    # tool called `list__admin` cannot pass for another connector's tool.
    from reconciler.governed.applied import split_public
    from reconciler.governed.gateway import served_tools
    from tests.func.test_gateway_compose import connector, tool, view

    odd = connector("a", [tool("list__admin", "Odd."), tool("x", "X.")], tools={"deny": ["x"]})
    assert [t.public_name for t in served_tools(view(odd))] == ["a__list__admin"]
    assert split_public("a__list__admin") == ("a", "list__admin")
    assert split_public("a__x") == ("a", "x")  # and the deny applies to it by its own name
    assert view(odd).allowed(odd, "x") == "connector.a tools.deny"
