"""The gateway's own stdin and stdout, read and written on the event loop (`runtime.server`'s
`serve_stdio` hands them to the SDK's `stdio_server`).

The SDK's default wraps both in `anyio.wrap_file`: every line read, every write and every flush
is a hop to a worker thread and back, three per message, which under load cost more than the
governed call itself. When stdin and stdout are pipes or sockets (how an MCP client starts the
gateway) they are read and written non-blocking here instead. As the SDK does, the wire moves
to private descriptors while serving: fd 0 reads the null device and fd 1 writes to stderr, so
stray output of this process or a child never corrupts the protocol; both are put back after.
Anything else (a terminal, a file) keeps the SDK's own thread-backed streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator, Iterator

CHUNK = 64 * 1024


class LineReader:
    """Lines of text from a non-blocking pipe, in the shape `stdio_server` reads (`async for`)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        pending = bytearray()
        while True:
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                if pending:
                    yield pending.decode("utf-8", "replace")
                return
            pending += chunk
            end = pending.rfind(b"\n")
            if end < 0:
                continue
            lines, pending = bytes(pending[: end + 1]), pending[end + 1 :]
            for line in lines.splitlines(keepends=True):
                yield line.decode("utf-8", "replace")


class LineWriter:
    """Text written to a non-blocking pipe, in the shape `stdio_server` writes (write, flush)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        """Queue `text`: the transport writes it as the pipe takes it."""
        self._writer.write(text.encode())

    async def flush(self) -> None:
        """Wait while the pipe is full (the reader is slower than us)."""
        await self._writer.drain()


@contextlib.asynccontextmanager
async def loop_stdio() -> AsyncIterator[tuple[LineReader, LineWriter] | None]:
    """(stdin, stdout) served on the event loop, or None when they are not pipes or sockets."""
    if not (_pipe(0) and _pipe(1)):
        yield None
        return
    loop = asyncio.get_running_loop()
    with _claimed() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=CHUNK)
        with (
            os.fdopen(wire_in, "rb", buffering=0, closefd=False) as source,
            os.fdopen(wire_out, "wb", buffering=0, closefd=False) as sink,
        ):
            read_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), source
            )
            write_transport, protocol = await loop.connect_write_pipe(
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), sink
            )
            writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
            try:
                yield LineReader(reader), LineWriter(writer)
            finally:
                read_transport.close()
                write_transport.close()


def _pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def _claimed() -> Iterator[tuple[int, int]]:
    """The wire on private descriptors; fd 0 on the null device and fd 1 on stderr meanwhile."""
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(null)
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
        os.close(wire_in)
        os.close(wire_out)
