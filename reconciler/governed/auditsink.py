"""Group commit for the governed call path's audit events.

Each call hands the sink its writes (the `tool.called` event, the wall time it charges, the
approval it spends) and waits; the sink runs every call's writes that are waiting in one
`BEGIN IMMEDIATE` transaction on its own connection in one worker thread, so while one batch
commits the next gathers. A call's result is returned only after its writes committed: a crash
loses no event of a returned result. One call's failing write does not sink the others: the
batch is retried call by call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler.errors import StateUnavailable
from reconciler.state.db import Connection, StateDB

Write = Callable[[Connection], None]
"""One write, run inside the batch's transaction."""

_Pending = tuple[tuple[Write, ...], "asyncio.Future[None]"]


class AuditSink:
    """Batches the writes of concurrent calls into shared transactions (see the module)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloned-audit")
        self._db: StateDB | None = None  # opened and used only in the worker thread
        self.transactions = 0
        """How many transactions committed (what the batching saves is visible in tests)."""

    async def commit(self, writes: Sequence[Write]) -> None:
        """Run `writes` in the next shared transaction and return once it committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((tuple(writes), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        # Shielded: a caller that gives up waiting still has its event committed.
        await asyncio.shield(future)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            errors = await loop.run_in_executor(self._worker, self._write, batch)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _write(self, batch: list[_Pending]) -> list[BaseException | None]:
        """In the worker thread: the whole batch in one transaction, else call by call."""
        db = self._open()
        try:
            with db.transaction() as connection:
                for writes, _ in batch:
                    for write in writes:
                        write(connection)
            self.transactions += 1
            return [None] * len(batch)
        except Exception as exc:  # noqa: BLE001 - retried one by one below, each error kept
            if len(batch) == 1:
                return [exc]
            return [self._one(db, writes) for writes, _ in batch]

    def _one(self, db: StateDB, writes: tuple[Write, ...]) -> BaseException | None:
        try:
            with db.transaction() as connection:
                for write in writes:
                    write(connection)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting call
            return exc
        self.transactions += 1
        return None

    def _open(self) -> StateDB:
        if self._db is None:
            db = StateDB.open(self._root, create=False)
            if db is None:
                raise StateUnavailable(f"{self._root}: the state database is gone")
            self._db = db
        return self._db

    async def aclose(self) -> None:
        """Commit what is waiting, then close the connection and the worker thread."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._worker, self._close)
        self._worker.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
