"""The governed call path's parts on their own: rate windows, concurrency slots, argument
validation against pinned schemas, the listing comparison, and the audit sink's group commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.audit.verify import verify
from reconciler.governed import arguments
from reconciler.governed.auditsink import AuditSink
from reconciler.governed.limits import Rate, RateWindows, Slots
from reconciler.governed.pins import refusal
from reconciler.state import audit_rows
from reconciler.state.db import StateDB
from tests.fakes.clock import FakeClock


def test_a_rate_window_slides_and_is_shared_by_every_process(tmp_path: Path) -> None:
    clock = FakeClock()
    rate = [Rate("connector.x", 2, 60.0, "connector.x limits.ratePerMinute (2)")]
    with StateDB.open(tmp_path) as one, StateDB.open(tmp_path) as other:
        assert one is not None and other is not None
        mine, theirs = RateWindows(clock), RateWindows(clock)
        with one.transaction() as connection:
            at = mine.now()
            mine.admit(connection, rate, at)
        with other.transaction() as connection:  # another process of the same workspace
            theirs.admit(connection, rate, theirs.now())
            assert theirs.full(connection, rate, theirs.now()) == rate[0]
        clock.advance(30)
        with one.transaction() as connection:
            assert mine.full(connection, rate, mine.now()) is not None
            mine.release(connection, rate, at)  # admitted, then refused: its place is back
            assert mine.full(connection, rate, mine.now()) is None
            mine.admit(connection, rate, mine.now())
        clock.advance(31)  # the other process's call is now over a minute old
        with other.transaction() as connection:
            assert theirs.full(connection, rate, theirs.now()) is None


def test_slots_cap_concurrency_and_time_out() -> None:
    async def main() -> tuple[bool, bool]:
        slots = Slots()
        held = await slots.acquire("x", 1, 1.0)
        assert held is not None
        none = await slots.acquire("x", 1, 0.05)
        held.release()
        again = await slots.acquire("x", 1, 0.05)
        return none is None, again is not None

    assert asyncio.run(main()) == (True, True)


SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
    "required": ["items"],
}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"items": [1, "two"]}, "$.items[1]: 'two' is not of type 'integer'"),
        ({}, "$: 'items' is a required property"),
    ],
)
def test_arguments_name_the_failing_path(value: object, where: str) -> None:
    found = arguments.problem("sha256:a", SCHEMA, value)
    assert found is not None and where in found
    assert arguments.problem("sha256:a", SCHEMA, {"items": [1, 2]}) is None


def test_a_bad_pinned_schema_refuses_with_a_clear_reason_and_the_dialect_is_honoured() -> None:
    found = arguments.problem("sha256:bad", {"type": "nonsense"}, {})
    assert found is not None and "is not a valid JSON Schema" in found
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    assert arguments.problem("sha256:d7", draft7, [1]) is not None  # tuple items in draft 7


def test_listing_refusals_name_the_tool() -> None:
    from reconciler.governed.pins import Observed

    seen = Observed((1, 0, "s"), {"echo": "changed", "gone": "removed", "extra": "new"})
    assert str(refusal(seen, "t", "echo")).startswith("rug pull: the definition of t__echo")
    assert "no longer lists t__gone" in str(refusal(seen, "t", "gone"))
    assert refusal(seen, "t", "same") is None


def test_the_sink_commits_concurrent_writes_in_shared_transactions(tmp_path: Path) -> None:
    from reconciler.audit.log import append
    from reconciler.redact import Redactor

    StateDB.open(tmp_path).close()  # type: ignore[union-attr]

    def event(n: int):  # type: ignore[no-untyped-def]
        return lambda c: append(
            c, actor="t", type="tool.called", subject="s", payload={"n": n}, redactor=Redactor()
        )

    def broken(connection: object) -> None:
        raise ValueError("this write fails")

    async def main() -> tuple[int, list[object]]:
        sink = AuditSink(tmp_path)
        await asyncio.gather(*(sink.commit([event(n)]) for n in range(40)))
        grouped = sink.transactions
        results = await asyncio.gather(
            *(sink.commit([event(n)]) for n in range(40, 50)),
            sink.commit([broken]),
            return_exceptions=True,
        )
        await sink.aclose()
        return grouped, results

    grouped, results = asyncio.run(main())
    assert grouped < 40
    assert results[:10] == [None] * 10 and isinstance(results[-1], ValueError)
    with StateDB.open(tmp_path) as db:
        assert db is not None
        assert audit_rows.count(db.reader) == 50  # the failing write sank no other
        assert verify(tmp_path, db).ok


def test_the_sink_waits_for_a_write_lock_another_process_holds_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    from reconciler.audit.log import append
    from reconciler.redact import Redactor

    StateDB.open(tmp_path).close()  # type: ignore[union-attr]

    def event(connection: object) -> None:
        append(
            connection,  # type: ignore[arg-type]
            actor="t",
            type="tool.called",
            subject="s",
            payload={},
            redactor=Redactor(),
        )

    async def main() -> tuple[bool, int]:
        sink = AuditSink(tmp_path)
        await sink.commit([event])  # the loop's own connection, the lock being free
        with StateDB.open(tmp_path) as other:
            assert other is not None
            other.reader.execute("BEGIN IMMEDIATE")  # another process writing
            waiting = asyncio.ensure_future(sink.commit([event]))
            for _ in range(20):
                await asyncio.sleep(0)  # the loop keeps running while the sink waits
            blocked = not waiting.done()
            other.reader.execute("COMMIT")
            await asyncio.wait_for(waiting, 10)
        await sink.aclose()
        return blocked, sink.transactions

    blocked, transactions = asyncio.run(main())
    assert blocked and transactions == 2
    with StateDB.open(tmp_path) as db:
        assert db is not None
        assert audit_rows.count(db.reader) == 2
        assert verify(tmp_path, db).ok
