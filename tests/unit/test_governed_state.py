"""The governed call path's state rows: budget use per period, and recorded tool listings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import StateUnavailable
from reconciler.state import listings, usage
from reconciler.state.db import StateDB
from reconciler.state.listings import Listing


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    with StateDB.open(tmp_path) as opened:
        assert opened is not None
        yield opened


@pytest.mark.parametrize(
    ("period", "moment", "key"),
    [
        ("day", datetime(2026, 12, 1, 23, 59, tzinfo=UTC), "2026-12-01"),
        ("week", datetime(2026, 12, 1, tzinfo=UTC), "2026-W49"),
        ("week", datetime(2027, 1, 1, tzinfo=UTC), "2026-W53"),  # ISO year, not the calendar's
        ("month", datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "2026-12"),
    ],
)
def test_period_keys_name_the_utc_day_iso_week_and_month(
    period: str, moment: datetime, key: str
) -> None:
    assert usage.period_key(period, moment) == key


def test_a_period_key_is_taken_in_utc() -> None:
    from datetime import timedelta, timezone

    evening_in_new_york = datetime(2026, 11, 30, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert usage.period_key("day", evening_in_new_york) == "2026-12-01"
    with pytest.raises(ValueError, match="unknown budget period"):
        usage.period_key("year", evening_in_new_york)


def test_use_adds_up_per_budget_and_period(db: StateDB) -> None:
    assert usage.get(db.reader, "monthly", "2026-12") == usage.Use("monthly", "2026-12")
    with db.transaction() as connection:
        usage.add(connection, "monthly", "2026-12", calls=1)
        usage.add(connection, "monthly", "2026-12", calls=1, wall_ms=250)
        usage.add(connection, "monthly", "2026-11", calls=5)
    with db.transaction() as connection:
        usage.add(connection, "monthly", "2026-12", calls=-1)  # a reservation given back
    assert usage.get(db.reader, "monthly", "2026-12") == usage.Use(
        "monthly", "2026-12", calls=1, wall_ms=250
    )
    assert [u.period for u in usage.all_uses(db.reader)] == ["2026-11", "2026-12"]
    assert usage.get(db.reader, "monthly", "2026-12").to_json()["wall_ms"] == 250


def test_a_listing_is_recorded_replaced_and_read_back(db: StateDB) -> None:
    tools = [{"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}]
    with db.transaction() as connection:
        listings.put(
            connection,
            Listing("connector.echo", "sha256:" + "a" * 64, tools, "2026-12-01T00:00:00Z", "apply"),
        )
        listings.put(
            connection,
            Listing(
                "connector.echo",
                "sha256:" + "b" * 64,
                [*tools, {"name": "ping"}],
                "2026-12-02T00:00:00Z",
                "runtime",
            ),
        )
    found = listings.get(db, "connector.echo")
    assert found is not None
    assert found.observed_by == "runtime"
    assert [tool["name"] for tool in found.tools] == ["echo", "ping"]
    assert listings.get(db, "connector.other") is None
    assert list(listings.all_listings(db)) == ["connector.echo"]


def test_a_damaged_listing_row_is_a_clear_error(db: StateDB) -> None:
    with db.transaction() as connection:
        connection.execute(
            "INSERT INTO tool_listings VALUES ('connector.x', 'sha256:0', '{\"no\": 1}', 't', 'x')"
        )
    with pytest.raises(StateUnavailable, match=r"tool listing of connector.x is not a list"):
        listings.get(db, "connector.x")
