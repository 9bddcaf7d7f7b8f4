"""The bytes between the supervisor and a connector's process, bounded both ways it can hurt.

stdout: newline-delimited JSON-RPC, read in chunks and cut into messages here (not by the
SDK's reader, whose line buffer grows without limit), each at most `max_message_bytes`; a
longer one fails the connector with `too-large`. stdin: the session's messages, one line each.
stderr: drained continuously (a full pipe would block the server), the lines of each read
through the redactor together into the connector's log, which rotates once to `.log.1` at
`stderr_log_bytes`, so at most twice that is kept and memory never holds more than one read.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.atomic import create_private_file
from reconciler.redact import Redactor

if TYPE_CHECKING:
    from anyio.abc import ByteReceiveStream, ByteSendStream
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

LINE_CAP = 8 * 1024
"""A stderr line is cut here (the rest of it is dropped): logs are for people, not data."""
TAIL_LINES = 5


class StderrLog:
    """A connector's stderr, redacted line by line into its bounded log."""

    def __init__(self, path: Path, *, cap: int, redactor: Redactor) -> None:
        self.path = path
        self._cap = max(cap, 1024)
        self._redactor = redactor
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        """The last lines written (redacted), for error messages."""

    async def pump(self, stream: ByteReceiveStream) -> None:
        """Copy `stream` into the log until it ends."""
        import anyio

        create_private_file(self.path)  # 0600 in 0700 folders: state is the owner's alone
        pending = bytearray()
        skipping = False
        with open(self.path, "ab") as log:
            size = log.tell()
            try:
                async for chunk in stream:
                    *lines, rest = (bytes(pending) + chunk).split(b"\n")
                    if skipping and lines:
                        lines, skipping = lines[1:], False
                    elif skipping:
                        rest = b""
                    if len(rest) > LINE_CAP:
                        lines.append(rest[:LINE_CAP] + b" [line cut]")
                        rest, skipping = b"", True
                    pending = bytearray(rest)
                    log, size = self._write(log, size, lines)
                if pending and not skipping:
                    log, size = self._write(log, size, [bytes(pending)])
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                pass  # the supervisor closed the pipe while stopping the process
            finally:
                log.close()

    def _write(self, log: Any, size: int, lines: list[bytes]) -> tuple[Any, int]:
        """Append the redacted lines, rotating to `.log.1` when the cap would be passed."""
        out = bytearray()
        # The lines of one read are masked together, so a value that holds newlines (a PEM
        # key) is masked whole when it arrives in one read; the mask itself is one line.
        joined = "\n".join(raw.decode("utf-8", "replace") for raw in lines)
        for text in self._redactor.text(joined, remember=False).split("\n") if lines else []:
            self.tail.append(text[:300])
            data = (text + "\n").encode()
            if size + len(out) + len(data) > self._cap:
                log.write(out)
                log.close()
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                create_private_file(self.path)
                log, size, out = open(self.path, "ab"), 0, bytearray()  # noqa: SIM115
            out += data
        log.write(out)
        log.flush()
        return log, size + len(out)


async def read_messages(
    stdout: ByteReceiveStream,
    send: MemoryObjectSendStream[Any],
    *,
    limit: int,
    too_large: Callable[[int], None],
) -> None:
    """Parse stdout into session messages until it ends; a message over `limit` bytes calls
    `too_large(size)` and stops reading. Closing `send` tells the session the peer is gone."""
    import anyio
    import mcp_types
    from mcp.shared.message import SessionMessage

    buffer = bytearray()
    with send:
        try:
            async for chunk in stdout:
                start = len(buffer)
                buffer += chunk
                lines, buffer = _split(buffer, start)
                for line in lines:
                    if len(line) > limit:
                        return too_large(len(line))
                    if line.strip():
                        item: Any
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(
                                line, by_name=False
                            )
                            item = SessionMessage(message)
                        except ValueError as exc:  # not JSON-RPC: the session is told
                            item = exc
                        await send.send(item)
                if len(buffer) > limit:
                    return too_large(len(buffer))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # the session is gone, or the pipe was closed under the read


def _split(buffer: bytearray, start: int) -> tuple[list[bytes], bytearray]:
    """Complete lines of `buffer` (newlines searched from `start`) and what is left."""
    end = buffer.rfind(b"\n", start)
    if end < 0:
        return [], buffer
    return bytes(buffer[:end]).split(b"\n"), buffer[end + 1 :]


async def write_messages(
    stdin: ByteSendStream, receive: MemoryObjectReceiveStream[Any], on_broken: Callable[[], None]
) -> None:
    """Write the session's messages to stdin, one JSON line each, until the session ends."""
    import anyio

    with receive:
        try:
            async for message in receive:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await stdin.send(data.encode() + b"\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            on_broken()  # the server closed its stdin: requests would wait forever
