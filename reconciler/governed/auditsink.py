"""Group commit for the governed call path's audit events.

Each call hands the sink its writes (the `tool.called` event, the wall time it charges, the
approval it spends) and waits; the sink runs every call's writes that are waiting in one
`BEGIN IMMEDIATE` transaction: the calls that finish in the same turn of the event loop share
it. The transaction runs on the event loop's own thread when the write lock is free at once
(no thread hand-off: the common case costs one SQLite commit, without fsync in WAL mode), and in
the sink's worker thread, which may wait for the lock, when another connection holds it; WAL
checkpoints run in that worker too, so the loop never waits on a lock or a checkpoint. A call's
result is returned only after its writes committed: a crash loses no event of a returned result.
One call's failing write does not sink the others: the batch is retried call by call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler.errors import StateUnavailable
from reconciler.state.db import Connection, StateDB

Write = Callable[[Connection], None]
"""One write, run inside the batch's transaction."""

_Pending = tuple[tuple[Write, ...], "asyncio.Future[None]"]

CHECKPOINT_EVERY = 200
"""Commits on the loop's connection between two WAL checkpoints in the worker thread."""


class AuditSink:
    """Batches the writes of concurrent calls into shared transactions (see the module)."""

    def __init__(self, root: Path, here: StateDB | None = None) -> None:
        """`here`: the event loop's connection to commit on (the caller's own, so its commits
        do not count as another connection's in `data_version`); else one is opened."""
        self._root = root
        self._owned = here is None
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloned-audit")
        self._db: StateDB | None = None  # opened and used only in the worker thread
        self._here = here.checkpoint_elsewhere() if here is not None else None  # loop thread only
        self._since_checkpoint = 0
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
            errors = self._write_here(batch)
            if errors is None:  # the lock is taken (or a write failed): wait in the worker
                errors = await loop.run_in_executor(self._worker, self._write, batch)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _write_here(self, batch: list[_Pending]) -> list[BaseException | None] | None:
        """On the loop's thread: the whole batch in one transaction if the write lock is free
        now; None when it is not, or when a write failed (rolled back: the worker retries)."""
        db = self._open_here()
        if db is None:
            return None
        try:
            with db.transaction_if_free() as connection:
                if connection is None:
                    return None
                for writes, _ in batch:
                    for write in writes:
                        write(connection)
        except Exception:  # noqa: BLE001 - the worker runs the batch again, call by call
            return None
        self.transactions += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            self._worker.submit(self._checkpoint)
        return [None] * len(batch)

    def _open_here(self) -> StateDB | None:
        if self._here is None:
            db = StateDB.open(self._root, create=False)
            self._here = db.checkpoint_elsewhere() if db is not None else None
        return self._here

    def _checkpoint(self) -> None:
        """In the worker thread: what autocheckpoint would do on the loop's commits."""
        # A failed checkpoint is only retried by the next one: nothing is lost meanwhile.
        with contextlib.suppress(Exception):
            self._open().checkpoint()

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
        if self._here is not None and self._owned:
            self._here.close()
            self._here = None

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
