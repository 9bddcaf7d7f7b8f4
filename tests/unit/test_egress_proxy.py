"""The egress proxy on loopback: an allowed CONNECT tunnel and plain http request reach the test
site at the address the proxy checked; every refusal (a host not allowed, the metadata address,
IPv6 and decimal disguises, a rebinding name, plain http without insecureHosts, malformed and
oversized heads) is a one-line 403 or 400 before any connection; every connection is reported
with its decision and byte counts. Nothing here connects beyond 127.0.0.1 (`Seen.on_connect`)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from reconciler.egress.pool import ProxyPool, socket_path
from tests.unit.egress_helpers import (
    LOOPBACK,
    TARGET,
    Resolver,
    Seen,
    body,
    echo,
    exchange,
    http_site,
    proxy,
    rules,
    serving,
    status,
)

GET = b"GET http://a.example/ HTTP/1.1\r\n"


def test_a_connect_tunnel_reaches_the_checked_address_and_counts_bytes(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, Seen]:
        seen = Seen()
        async with serving(echo) as port:
            resolver = Resolver(dict(LOOPBACK))
            async with proxy(tmp_path, rules(f"{TARGET}:{port}"), resolver, seen) as p:
                payload = b"x" * 100_000
                answer = await exchange(
                    p.path, f"CONNECT {TARGET}:{port} HTTP/1.1\r\n\r\n".encode() + payload
                )
                await seen.record()
                assert resolver.asked == [TARGET]
        return answer, seen

    answer, seen = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert body(answer) == b"x" * 100_000
    [record] = seen.records
    assert (record.decision, record.host, record.address) == ("allowed", TARGET, "127.0.0.1")
    assert record.bytes_up == record.bytes_down == 100_000
    assert record.rule == f"connector weather spec.egress.allowHosts: {TARGET}:{record.port}"
    assert [address for _, address, _ in seen.connects] == ["127.0.0.1"]


def test_plain_http_is_forwarded_in_origin_form_with_proxy_headers_dropped(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, Seen, int]:
        seen = Seen()
        async with serving(http_site) as port:
            egress = rules(f"{TARGET}:{port}", insecure=[f"{TARGET}:{port}"])
            async with proxy(tmp_path, egress, Resolver(dict(LOOPBACK)), seen) as p:
                request = (
                    f"POST http://{TARGET.upper()}:{port}/v1/x?q=1 HTTP/1.1\r\n"
                    f"Host: elsewhere.example\r\nProxy-Authorization: Basic c2VjcmV0\r\n"
                    f"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\nhello"
                )
                answer = await exchange(p.path, request.encode())
                await seen.record()
        return answer, seen, port

    answer, seen, port = asyncio.run(main())
    assert status(answer) == 200
    sent = body(answer)
    assert sent.startswith(b"POST /v1/x?q=1 HTTP/1.1\r\n")
    assert f"Host: {TARGET}:{port}\r\n".encode() in sent
    assert b"Connection: close\r\n" in sent and sent.endswith(b"\r\n\r\nhello")
    assert b"Proxy-Authorization" not in sent and b"X-Hop" not in sent
    assert b"elsewhere" not in sent
    [record] = seen.records
    assert record.decision == "allowed" and record.method == "POST"
    assert record.bytes_up == len(sent) and record.bytes_down == len(answer)


@pytest.mark.parametrize(
    ("request_line", "allow", "why"),
    [("CONNECT evil.example:443", "api.example.org", "is not in any allow list"),
     ("CONNECT 169.254.169.254:443", "*", "the cloud metadata address"),
     ("CONNECT [::ffff:169.254.169.254]:443", "*", "IPv4-mapped IPv6 form"),
     ("CONNECT [::ffff:127.0.0.1]:443", "*", "loopback"),
     ("CONNECT [64:ff9b::a9fe:a9fe]:443", "*", "NAT64 form"),
     ("CONNECT 2130706433:443", "*", "127.0.0.1: loopback"),
     ("CONNECT 0x7f.1:443", "*", "loopback"),
     ("CONNECT [::1]:443", "*", "loopback (::1)"),
     ("GET http://api.example.org/ HTTP/1.1", "api.example.org:80", "plain http is refused")],
)  # fmt: skip
def test_refusals_answer_403_with_one_line_and_never_connect(
    tmp_path: Path, request_line: str, allow: str, why: str
) -> None:
    line = request_line if request_line.endswith("HTTP/1.1") else request_line + " HTTP/1.1"

    async def main() -> tuple[bytes, Seen, Resolver]:
        seen, resolver = Seen(), Resolver()
        async with proxy(tmp_path, rules(allow), resolver, seen) as p:
            answer = await exchange(p.path, f"{line}\r\nHost: x\r\n\r\n".encode())
            await seen.record()
        return answer, seen, resolver

    answer, seen, resolver = asyncio.run(main())
    assert status(answer) == 403
    text = body(answer).decode()
    assert why in text and text.count("\n") == 1 and "Traceback" not in text
    assert resolver.asked == [] and seen.connects == []  # refused before a lookup or a packet
    [record] = seen.records
    assert record.decision == "refused" and why in record.reason
    assert record.bytes_up == record.bytes_down == 0


def test_a_name_is_resolved_once_and_only_its_checked_answer_is_connected_to(
    tmp_path: Path,
) -> None:
    # Rebinding: the first answer is public (the connect is stopped by the test's hook, so no
    # packet leaves), the next one loopback. The proxy never connects to the second answer.
    async def main() -> tuple[list[bytes], Seen, Resolver]:
        seen = Seen()
        resolver = Resolver({"api.example.org": [["93.184.215.14"], ["127.0.0.1"]]})
        async with proxy(tmp_path, rules("api.example.org"), resolver, seen) as p:
            line = b"CONNECT api.example.org:443 HTTP/1.1\r\n\r\n"
            answers = [await exchange(p.path, line), await exchange(p.path, line)]
            await seen.record(2)
        return answers, seen, resolver

    answers, seen, resolver = asyncio.run(main())
    assert [status(a) for a in answers] == [502, 403]
    assert resolver.asked == ["api.example.org", "api.example.org"]  # once per connection
    assert seen.connects == [("api.example.org", "93.184.215.14", 443)]
    first, second = seen.records
    assert (first.decision, first.address) == ("failed", "93.184.215.14")
    assert second.decision == "refused" and "127.0.0.1: loopback" in second.reason


def test_one_refused_answer_among_several_refuses_the_host(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, Seen]:
        seen = Seen()
        resolver = Resolver({"api.example.org": [["93.184.215.14", "10.0.0.7"]]})
        async with proxy(tmp_path, rules("api.example.org"), resolver, seen) as p:
            answer = await exchange(p.path, b"CONNECT api.example.org:443 HTTP/1.1\r\n\r\n")
            await seen.record()
        return answer, seen

    answer, seen = asyncio.run(main())
    assert status(answer) == 403 and b"10.0.0.7: private" in body(answer)
    assert seen.connects == []


@pytest.mark.parametrize(
    ("data", "code", "why"),
    [(b"GARBAGE\r\n\r\n", 400, "malformed request line"),
     (b"GET /relative HTTP/1.1\r\n\r\n", 400, "only CONNECT and absolute http://"),
     (b"GET https://api.example.org/ HTTP/1.1\r\n\r\n", 400, "only CONNECT and absolute"),
     (b"CONNECT api.example.org HTTP/1.1\r\n\r\n", 400, "CONNECT needs host:port"),
     (b"CONNECT user@api.example.org:443 HTTP/1.1\r\n\r\n", 400, "CONNECT needs host:port"),
     (b"CONNECT api.example.org:443 HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "malformed header"),
     (GET + b"Transfer-Encoding: chunked\r\n\r\n", 411, "Content-Length"),
     (GET + b"X: " + b"a" * 20_000 + b"\r\n\r\n", 431, "over 16384 bytes"),
     (GET + b"X: 1\r\n" * 200 + b"\r\n", 431, "more than 100"),
     (b"CONNECT api.example.org:443 HTTP/1.1\r\n", 400, "ended before its blank line")],
)  # fmt: skip
def test_bad_requests_are_refused_with_their_status(
    tmp_path: Path, data: bytes, code: int, why: str
) -> None:
    async def main() -> tuple[bytes, Seen]:
        seen = Seen()
        async with proxy(tmp_path, rules("*", insecure=["*"]), Resolver(), seen) as p:
            answer = await exchange(p.path, data)
            await seen.record()
        return answer, seen

    answer, seen = asyncio.run(main())
    assert status(answer) == code and why in body(answer).decode()
    assert seen.connects == [] and seen.records[0].decision == "invalid"


def test_an_idle_tunnel_is_closed_and_reported(tmp_path: Path) -> None:
    async def main() -> Seen:
        seen = Seen()
        async with serving(echo) as port:
            egress = rules(f"{TARGET}:{port}")
            resolver = Resolver(dict(LOOPBACK))
            async with proxy(tmp_path, egress, resolver, seen, idle_timeout=0.2) as p:
                reader, writer = await asyncio.open_unix_connection(p.path)
                writer.write(f"CONNECT {TARGET}:{port} HTTP/1.1\r\n\r\nping".encode())
                answer = await asyncio.wait_for(reader.read(), 5)  # the proxy closes it
                assert answer.endswith(b"\r\n\r\nping")
                writer.close()
                await seen.record()
        return seen

    [record] = asyncio.run(main()).records
    assert record.decision == "allowed" and "0.2 s without traffic" in record.reason
    assert record.bytes_up == record.bytes_down == 4


def test_an_unreachable_target_is_a_502_naming_it(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, Seen]:
        seen = Seen()
        async with serving(echo) as port:
            pass  # the port is closed again: nothing listens there
        async with proxy(tmp_path, rules(f"{TARGET}:{port}"), Resolver(dict(LOOPBACK)), seen) as p:
            answer = await exchange(p.path, f"CONNECT {TARGET}:{port} HTTP/1.1\r\n\r\n".encode())
            await seen.record()
        return answer, seen

    answer, seen = asyncio.run(main())
    assert status(answer) == 502 and b"could not connect" in body(answer)
    assert seen.records[0].decision == "failed"


def test_a_name_that_does_not_resolve_is_a_502_naming_it(tmp_path: Path) -> None:
    from reconciler.errors import ClonedError

    def failing(host: str, port: int) -> list[str]:
        raise ClonedError("no such name")

    async def main() -> tuple[bytes, Seen]:
        seen = Seen()
        async with proxy(tmp_path, rules("api.example.org"), failing, seen) as p:  # type: ignore[arg-type]
            answer = await exchange(p.path, b"CONNECT api.example.org:443 HTTP/1.1\r\n\r\n")
            await seen.record()
        return answer, seen

    answer, seen = asyncio.run(main())
    assert status(answer) == 502
    assert body(answer) == b"api.example.org: could not resolve (no such name)\n"
    assert seen.records[0].decision == "failed" and seen.connects == []


def test_the_pool_listens_privately_per_connector_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> tuple[Path, Path, Path, int, int, tuple[str, ...]]:
        pool = ProxyPool(tmp_path, scope="4242", resolver=Resolver())
        path = await pool.start("weather", rules("api.example.org"))
        same = await pool.ensure("weather", rules("api.example.org"))
        maps = b"CONNECT maps.example.org:443 HTTP/1.1\r\n\r\n"
        monkeypatch.chdir(path.parent)  # the full path is too long for a socket address
        assert b"not in any allow list" in body(await exchange(Path(path.name), maps))
        await pool.ensure("weather", rules("api.example.org", "maps.example.org"))
        # New rules (an apply) take effect at the same socket: allowed now (and then not
        # resolved by the test's resolver).
        assert b"did not resolve" in body(await exchange(Path(path.name), maps))
        modes = stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)
        running = pool.running()
        await pool.aclose()
        return path, same, tmp_path / ".cloned/state/runtime/egress/4242", *modes, running

    path, same, scope, socket_mode, folder_mode, running = asyncio.run(main())
    assert path == same == socket_path(tmp_path, "weather", "4242")
    assert path.relative_to(tmp_path).as_posix() == (
        ".cloned/state/runtime/egress/4242/weather/proxy.sock"
    )
    assert (socket_mode, folder_mode, running) == (0o600, 0o700, ("weather",))
    assert not path.exists() and not scope.exists()


def test_a_new_pool_removes_the_sockets_of_a_process_that_died(tmp_path: Path) -> None:
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    egress = tmp_path / ".cloned/state/runtime/egress"
    (egress / gone / "weather").mkdir(parents=True)
    (egress / str(os.getpid()) / "weather").mkdir(parents=True)  # a live process: kept

    async def main() -> None:
        pool = ProxyPool(tmp_path, scope="1", resolver=Resolver())
        await pool.start("weather", rules("api.example.org"))
        await pool.aclose()

    asyncio.run(main())
    assert sorted(p.name for p in egress.iterdir()) == [str(os.getpid())]


def test_only_local_hosts_named_with_a_port_may_resolve_to_loopback_on_that_port() -> None:
    named = rules("127.0.0.1:8080", "localhost:11434", "api.example.org", insecure=["*"])
    assert named.local_services() == {("127.0.0.1", 8080), ("localhost", 11434)}
    assert rules("*", "127.0.0.1", "*.localhost:80").local_services() == frozenset()


def test_a_socket_path_too_long_for_sun_path_still_binds(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)

    async def main() -> int:
        seen = Seen()
        p = proxy(deep, rules("api.example.org"), Resolver(), seen)
        deep.mkdir(parents=True)
        folder = os.open(deep, os.O_PATH)  # a client's way to a deep socket
        try:
            async with p:
                short = Path(f"/proc/self/fd/{folder}/egress/weather.sock")
                answer = await exchange(short, b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n")
        finally:
            os.close(folder)
        return status(answer)

    assert len(os.fsencode(deep)) > 120
    assert asyncio.run(main()) == 403
