"""The forwarder as the sandbox will run it (the system python, `-I -S`): TCP on 127.0.0.1 to the
connector's egress proxy on its Unix socket, then to the loopback test site; and the launcher,
which gives the connector its proxy variables, holds none of its stdio and dies with it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from reconciler.egress.forwarder import forwarder_command, proxy_env
from tests.fakes.runtime_helpers import alive, eventually
from tests.unit.egress_helpers import (
    LOOPBACK,
    TARGET,
    Resolver,
    Seen,
    body,
    echo,
    http_site,
    proxy,
    rules,
    serving,
    status,
)

CLIENT = """
import json, os, pathlib, sys, urllib.request
me = os.getpid()
kids = pathlib.Path(f"/proc/{me}/task/{me}/children").read_text().split()
with urllib.request.urlopen(f"http://target.test:{sys.argv[1]}/hello", timeout=10) as answer:
    text = answer.read().decode()
names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY")
print(json.dumps({"kids": kids, "text": text, "env": {n: os.environ.get(n) for n in names}}))
"""


async def through(port: int, data: bytes) -> bytes:
    """Send `data` to the forwarder on 127.0.0.1:`port`, half-close, read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def test_the_forwarder_carries_tunnels_and_requests_to_the_proxy(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, bytes, Seen]:
        seen = Seen()
        async with serving(echo) as echo_port, serving(http_site) as http_port:
            plain_host = f"{TARGET}:{http_port}"
            egress = rules(f"{TARGET}:{echo_port}", plain_host, insecure=[plain_host])
            async with proxy(tmp_path, egress, Resolver(dict(LOOPBACK)), seen) as p:
                command = forwarder_command(p.path, 0)
                assert command[1:3] == ["-I", "-S"]
                child = await asyncio.create_subprocess_exec(
                    *command, stdout=asyncio.subprocess.PIPE
                )
                try:
                    assert child.stdout is not None
                    port = int(await asyncio.wait_for(child.stdout.readline(), 10))
                    connect = f"CONNECT {TARGET}:{echo_port} HTTP/1.1\r\n\r\nhi"
                    tunnel = await through(port, connect.encode())
                    get = f"GET http://{plain_host}/a HTTP/1.1\r\n\r\n"
                    plain = await through(port, get.encode())
                    await seen.record(2)
                finally:
                    child.kill()
                    await child.wait()
        return tunnel, plain, seen

    tunnel, plain, seen = asyncio.run(main())
    assert tunnel.startswith(b"HTTP/1.1 200 ") and body(tunnel) == b"hi"
    assert status(plain) == 200 and body(plain).startswith(b"GET /a HTTP/1.1\r\n")
    assert [r.decision for r in seen.records] == ["allowed", "allowed"]
    assert (seen.records[0].bytes_up, seen.records[0].bytes_down) == (2, 2)


def test_a_refusal_reaches_the_connector_through_the_forwarder(tmp_path: Path) -> None:
    async def main() -> bytes:
        seen = Seen()
        async with proxy(tmp_path, rules("api.example.org"), Resolver(), seen) as p:
            child = await asyncio.create_subprocess_exec(
                *forwarder_command(p.path, 0), stdout=asyncio.subprocess.PIPE
            )
            try:
                assert child.stdout is not None
                port = int(await asyncio.wait_for(child.stdout.readline(), 10))
                return await through(port, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n")
            finally:
                child.kill()
                await child.wait()

    answer = asyncio.run(main())
    assert status(answer) == 403 and b"not in any allow list" in body(answer)


def test_the_launcher_gives_the_connector_its_proxy_and_the_forwarder_dies_with_it(
    tmp_path: Path,
) -> None:
    async def main() -> tuple[dict[str, object], int, Seen]:
        seen = Seen()
        async with serving(http_site) as port:
            egress = rules(f"{TARGET}:{port}", insecure=[f"{TARGET}:{port}"])
            async with proxy(tmp_path, egress, Resolver(dict(LOOPBACK)), seen) as p:
                connector = [sys.executable, "-c", CLIENT, str(port)]
                child = await asyncio.create_subprocess_exec(
                    *forwarder_command(p.path, 0, then=connector),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                # EOF on its stdout and stderr once the connector exits: the forwarder it
                # leaves behind holds neither.
                out, err = await asyncio.wait_for(child.communicate(), 20)
                assert child.returncode == 0, err.decode()
                await seen.record()
        return json.loads(out), child.pid, seen

    report, pid, seen = asyncio.run(main())
    [forwarder] = [int(kid) for kid in report["kids"]]  # type: ignore[union-attr]
    assert "GET /hello HTTP/1.1" in str(report["text"])
    env = report["env"]
    assert isinstance(env, dict)
    port = int(env["HTTP_PROXY"].rsplit(":", 1)[1])
    assert env == {k: v for k, v in proxy_env(port).items() if k in env}
    assert env["NO_PROXY"] == ""
    assert seen.records[0].decision == "allowed" and seen.records[0].host == TARGET
    assert eventually(lambda: not alive(forwarder)), "the forwarder outlived its connector"
    assert pid != forwarder
