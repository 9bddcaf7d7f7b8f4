"""The bounded streams between the supervisor and a connector, fed in process (no server):
stderr lines redacted, cut and rotated; stdout messages parsed and capped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from reconciler.redact import MASK, Redactor
from reconciler.runtime.streams import LINE_CAP, StderrLog, read_messages


async def feed(chunks: list[bytes]) -> Any:
    send, receive = anyio.create_memory_object_stream[bytes](len(chunks) + 1)
    for chunk in chunks:
        send.send_nowait(chunk)
    send.close()
    return receive


def test_stderr_lines_split_across_chunks_are_redacted_whole(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.register("s3cr3t-value")
    log = StderrLog(tmp_path / "x.log", cap=4096, redactor=redactor)

    async def scenario() -> None:
        await log.pump(await feed([b"token s3cr", b"3t-value here\nsecond", b" line"]))

    anyio.run(scenario)
    assert (tmp_path / "x.log").read_text() == f"token {MASK} here\nsecond line\n"
    assert list(log.tail) == [f"token {MASK} here", "second line"]


def test_a_huge_stderr_line_is_cut_and_the_log_rotates_once(tmp_path: Path) -> None:
    log = StderrLog(tmp_path / "x.log", cap=20_000, redactor=Redactor())
    lines = [f"line {n:05}\n".encode() for n in range(5000)]
    huge = [b"a" * 5000] * 10 + [b"a\nafter\n"]  # 50 kB without a newline: cut at LINE_CAP

    async def scenario() -> None:
        await log.pump(await feed([*lines, *huge]))

    anyio.run(scenario)
    current, rotated = tmp_path / "x.log", tmp_path / "x.log.1"
    assert current.stat().st_size <= 20_000 and rotated.stat().st_size <= 20_000
    assert not (tmp_path / "x.log.2").exists()
    assert current.read_text().splitlines()[-2:] == ["a" * LINE_CAP + " [line cut]", "after"]
    assert "line 04999" in current.read_text() + rotated.read_text()  # the tail is kept


def test_stdout_messages_are_parsed_and_an_oversized_one_stops_the_read() -> None:
    seen: list[int] = []

    async def scenario() -> list[Any]:
        out, received = anyio.create_memory_object_stream[Any](10)
        ping = b'{"jsonrpc":"2.0","id":1,"result":{}}\n'
        stdout = await feed([ping[:10], ping[10:] + b"not json\n", b"z" * 3000])
        await read_messages(stdout, out, limit=1000, too_large=seen.append)
        return [item async for item in received]

    items = anyio.run(scenario)
    assert len(items) == 2
    assert items[0].message.id == 1
    assert isinstance(items[1], ValueError)  # handed to the session, which reports it
    assert seen and seen[0] > 1000


def test_a_multi_line_value_in_one_read_is_masked_whole(tmp_path: Path) -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcN\n-----END KEY-----"
    redactor = Redactor()
    redactor.register(key)
    log = StderrLog(tmp_path / "x.log", cap=4096, redactor=redactor)

    async def scenario() -> None:
        await log.pump(await feed([f"loaded\n{key}\ndone\n".encode()]))

    anyio.run(scenario)
    assert (tmp_path / "x.log").read_text() == f"loaded\n{MASK}\ndone\n"
    assert "MIIBOgIBAAJBAKj34GkxFhD90vcN" not in "".join(log.tail)
