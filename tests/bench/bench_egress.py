"""Benchmark of the egress proxy on loopback (`make bench`): what a connector's request pays.

A plain http site on 127.0.0.1 (asyncio), the connector's `EgressProxy` on a Unix socket and
the forwarder (`python -I -S`, as the sandbox runs it) on 127.0.0.1, the site allowed through
the proxy's loopback setting for tests. Interleaved, one per mode per round, each on a new
connection as the proxy serves one request per connection, from a blocking client in the main
thread (the site and the proxy run in a second thread's event loop):

- `direct`: TCP to the site, `GET /` in origin form, the whole response read;
- `proxy`: the proxy's Unix socket, the same request in absolute form;
- `forwarder`: TCP to the forwarder, which carries it to the proxy's socket;
- `tunnel direct` / `tunnel proxy`: a TCP echo, or a CONNECT to it, one 64-byte round trip.

Goal (issue 12): under 1 ms added at p50 through the proxy.

    python tests/bench/bench_egress.py [--requests 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.egress.forwarder import forwarder_command
from reconciler.egress.proxy import EgressProxy
from reconciler.egress.rules import EgressRules
from reconciler.model.kinds import ConnectorEgress

HOST = "site.test"
BODY = b"x" * 512


async def site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    await writer.drain()
    writer.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return loop


def run(loop: asyncio.AbstractEventLoop, coro):  # type: ignore[no-untyped-def]
    return asyncio.run_coroutine_threadsafe(coro, loop).result(10)


def request(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def tcp(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def round_trip(sock: socket.socket, connect: bytes | None) -> None:
    payload = b"p" * 64
    sock.sendall((connect or b"") + payload)
    wanted = len(payload) + (len(b"HTTP/1.1 200 Connection Established\r\n\r\n") if connect else 0)
    got = b""
    while len(got) < wanted:
        got += sock.recv(65536)
    sock.close()


def measure(modes: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in modes}
    for mode in modes.values():  # warm-up
        for _ in range(10):
            mode()
    for _ in range(rounds):
        for name, mode in modes.items():
            start = time.perf_counter()
            mode()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    loop = start_loop()
    site_server = run(loop, asyncio.start_server(site, "127.0.0.1", 0))
    echo_server = run(loop, asyncio.start_server(echo, "127.0.0.1", 0))
    site_port = site_server.sockets[0].getsockname()[1]
    echo_port = echo_server.sockets[0].getsockname()[1]
    hosts = [f"{HOST}:{site_port}", f"{HOST}:{echo_port}"]
    egress = ConnectorEgress.model_validate({"allowHosts": hosts, "insecureHosts": hosts[:1]})
    with tempfile.TemporaryDirectory() as folder:
        proxy = EgressProxy(
            "bench",
            EgressRules.for_connector("bench", egress),
            path=Path(folder) / "egress" / "bench.sock",
            resolver=lambda host, port: ["127.0.0.1"],
            allow_loopback_for=[HOST],
        )
        run(loop, proxy.start())
        forwarder = subprocess.Popen(forwarder_command(proxy.path, 0), stdout=subprocess.PIPE)
        try:
            assert forwarder.stdout is not None
            fport = int(forwarder.stdout.readline())
            direct = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
            absolute = f"GET http://{HOST}:{site_port}/ HTTP/1.1\r\n\r\n".encode()
            connect = f"CONNECT {HOST}:{echo_port} HTTP/1.1\r\n\r\n".encode()
            modes: dict[str, Callable[[], object]] = {
                "direct": lambda: request(tcp(site_port), direct),
                "proxy": lambda: request(unix(proxy.path), absolute),
                "forwarder": lambda: request(tcp(fport), absolute),
                "tunnel direct": lambda: round_trip(tcp(echo_port), None),
                "tunnel proxy": lambda: round_trip(unix(proxy.path), connect),
            }
            assert request(unix(proxy.path), absolute).endswith(BODY)
            times = measure(modes, args.requests)
        finally:
            forwarder.kill()
            forwarder.wait()
            run(loop, proxy.close())
    report = {name: round(statistics.median(values), 3) for name, values in times.items()}
    report["added proxy"] = round(report["proxy"] - report["direct"], 3)
    report["added forwarder"] = round(report["forwarder"] - report["direct"], 3)
    report["added tunnel"] = round(report["tunnel proxy"] - report["tunnel direct"], 3)
    print(f"egress proxy on loopback, p50 of {args.requests} requests (ms):")
    for name, value in report.items():
        print(f"  {name:16} {value:8.3f}")
    verdict = "met" if report["added proxy"] < 1 else "MISSED"
    print(f"  goal: under 1 ms added through the proxy: {verdict}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
