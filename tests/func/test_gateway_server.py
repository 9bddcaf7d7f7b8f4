"""The gateway's MCP server (reconciler.runtime.server) with the SDK's real client: over stdio
as a subprocess and over streamable HTTP in this process, in both protocol eras, and the HTTP
checks (bearer token, Host, Origin, loopback only)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from reconciler.runtime.server import (
    GatewayServer,
    HandlerResult,
    ListenRefused,
    ServedTool,
    check_listen,
)
from tests.conftest import REPO

FAKE = REPO / "tests" / "fakes" / "gateway_fixed.py"
TOKEN = "test-token-0123456789"


def definition(name: str, description: str = "A tool.") -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }


TOOLS = [definition("fixed__echo"), definition("fixed__fail"), definition("fixed__reload")]


def stdio_params(tools_file: Path) -> StdioServerParameters:
    args = [str(FAKE), str(tools_file)]
    return StdioServerParameters(command=sys.executable, args=args, cwd=REPO)


def run(main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_stdio_lists_calls_and_tells_of_changes(tmp_path: Path, mode: str) -> None:
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(TOOLS))
    seen: list[Any] = []

    async def on_message(message: Any) -> None:
        seen.append(message)

    async def main() -> None:
        async with Client(stdio_params(tools_file), mode=mode, message_handler=on_message) as c:
            assert c.server_capabilities.tools is not None
            assert c.server_capabilities.tools.list_changed is True
            listed = await c.list_tools()
            assert [t.name for t in listed.tools] == ["fixed__echo", "fixed__fail", "fixed__reload"]
            assert listed.tools[0].description == "A tool."
            result = await c.call_tool("fixed__echo", {"text": "hi"})
            assert not result.is_error
            assert json.loads(result.content[0].text) == {  # type: ignore[union-attr]
                "arguments": {"text": "hi"},
                "tool": "fixed__echo",
            }
            assert result.structured_content == {"tool": "fixed__echo"}
            unknown = await c.call_tool("other__tool", {})
            assert unknown.is_error
            assert "no tool named 'other__tool'" in unknown.content[0].text  # type: ignore[union-attr]
            refused = await c.call_tool("fixed__fail", {})
            assert refused.is_error
            assert refused.content[0].text == "refused: the test says no"  # type: ignore[union-attr]
            tools_file.write_text(json.dumps([definition("fixed__reload"), definition("new__t")]))
            if mode == "legacy":
                await c.call_tool("fixed__reload", {})
                with anyio.fail_after(10):
                    while not any("list_changed" in repr(m) for m in seen):
                        await anyio.sleep(0.01)
            else:
                async with c.listen(tools_list_changed=True) as subscription:
                    await c.call_tool("fixed__reload", {})
                    with anyio.fail_after(10):
                        async for event in subscription:
                            assert type(event).__name__ == "ToolsListChanged"
                            break
            relisted = await c.list_tools()
            assert [t.name for t in relisted.tools] == ["fixed__reload", "new__t"]

    run(main)


@asynccontextmanager
async def http_gateway(
    tools: list[ServedTool], host: str = "127.0.0.1"
) -> AsyncIterator[tuple[GatewayServer, int]]:
    async def handler(name: str, arguments: dict[str, Any]) -> HandlerResult:
        return HandlerResult(({"type": "text", "text": f"{name} {json.dumps(arguments)}"},))

    gateway = GatewayServer(name="t", version="1", tools=lambda: tools, handler=handler)
    ports: list[int] = []
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        ports.append(port)
        ready.set()

    async with anyio.create_task_group() as group:
        group.start_soon(lambda: gateway.serve_http(host, 0, token=TOKEN, ready=on_ready))
        with anyio.fail_after(10):
            await ready.wait()
        yield gateway, ports[0]
        group.cancel_scope.cancel()


def served(*names: str) -> list[ServedTool]:
    return [ServedTool(name, definition(name)) for name in names]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_http_with_the_token_lists_calls_and_tells_of_changes(mode: str) -> None:
    tools = served("a__one", "b__two")
    seen: list[Any] = []

    async def on_message(message: Any) -> None:
        seen.append(message)

    async def main() -> None:
        async with http_gateway(tools) as (gateway, port):
            url = f"http://127.0.0.1:{port}/mcp"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(
                    streamable_http_client(url, http_client=http),
                    mode=mode,
                    message_handler=on_message,
                ) as c,
            ):
                listed = await c.list_tools()
                assert [t.name for t in listed.tools] == ["a__one", "b__two"]
                result = await c.call_tool("b__two", {"text": "x"})
                assert result.content[0].text == 'b__two {"text": "x"}'  # type: ignore[union-attr]
                tools.append(ServedTool("c__three", definition("c__three")))
                if mode == "legacy":
                    await gateway.tools_changed()
                    with anyio.fail_after(10):
                        while not any("list_changed" in repr(m) for m in seen):
                            await anyio.sleep(0.01)
                else:
                    async with c.listen(tools_list_changed=True) as subscription:
                        await gateway.tools_changed()
                        with anyio.fail_after(10):
                            async for _event in subscription:
                                break
                relisted = await c.list_tools()
                assert [t.name for t in relisted.tools][-1] == "c__three"

    run(main)


def test_http_refuses_without_the_token_and_from_foreign_hosts_and_origins() -> None:
    async def main() -> None:
        async with http_gateway(served("a__one")) as (_gateway, port):
            url = f"http://127.0.0.1:{port}/mcp"
            good = {"Authorization": f"Bearer {TOKEN}"}
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            async with httpx2.AsyncClient() as http:
                missing = await http.post(url, json=body)
                assert missing.status_code == 401
                assert missing.headers["www-authenticate"].startswith("Bearer")
                wrong = await http.post(url, json=body, headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                basic = await http.post(url, json=body, headers={"Authorization": TOKEN})
                assert basic.status_code == 401
                for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
                    rebound = await http.post(url, json=body, headers={**good, "Host": host})
                    assert rebound.status_code == 403, host
                for origin in ("http://evil.example", f"https://127.0.0.1:{port}", "null"):
                    foreign = await http.post(url, json=body, headers={**good, "Origin": origin})
                    assert foreign.status_code == 403, origin
                # Neither a missing token nor a rebound host reaches the MCP app at all.
                assert "jsonrpc" not in missing.text
                local = {**good, "Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
                ok = await http.post(
                    url,
                    json=body,
                    headers={**local, "Accept": "application/json, text/event-stream"},
                )
                assert ok.status_code not in (401, 403)

    run(main)


@pytest.mark.parametrize(
    ("host", "port", "says"),
    [
        ("0.0.0.0", 8080, "not a loopback address"),
        ("192.168.1.10", 8080, "not a loopback address"),
        ("example.com", 8080, "not a loopback address"),
        ("::", 8080, "not a loopback address"),
        ("127.0.0.1", 70000, "out of range"),
        ("127.0.0.1", -1, "out of range"),
    ],
)
def test_only_loopback_listen_addresses_are_served(host: str, port: int, says: str) -> None:
    with pytest.raises(ListenRefused, match=says):
        check_listen(host, port)

    async def main() -> None:
        gateway = GatewayServer(name="t", version="1", tools=list, handler=_never)
        await gateway.serve_http(host, port, token=TOKEN)

    with pytest.raises(ListenRefused, match=says):
        run(main)


def test_ipv6_loopback_is_served() -> None:
    async def main() -> None:
        async with (
            http_gateway(served("a__one"), host="::1") as (_gateway, port),
            httpx2.AsyncClient() as http,
        ):
            answer = await http.post(f"http://[::1]:{port}/mcp", json={})
            assert answer.status_code == 401

    try:
        run(main)
    except ListenRefused as exc:  # a host without IPv6 loopback
        pytest.skip(str(exc))


async def _never(name: str, arguments: dict[str, Any]) -> HandlerResult:
    raise AssertionError("no call expected")
