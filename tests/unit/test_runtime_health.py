"""The supervisor's backoff and circuit breaker, driven by a fake clock (no real time)."""

from __future__ import annotations

import pytest

from reconciler.runtime.health import Health
from reconciler.runtime.types import RuntimeFailure, Settings
from tests.fakes.clock import FakeClock

SETTINGS = Settings(backoff_initial=1.0, backoff_max=5.0, breaker_failures=3, breaker_open_for=60.0)


def health() -> tuple[Health, FakeClock]:
    clock = FakeClock()
    return Health("notes", settings=SETTINGS, clock=clock), clock


def test_a_fresh_connector_starts_at_once() -> None:
    state, _ = health()
    assert state.wait() == 0.0
    assert state.breaker == "closed"
    assert state.retry_in() is None


def test_backoff_doubles_after_each_failure_up_to_the_cap() -> None:
    clock = FakeClock()
    settings = Settings(backoff_initial=1.0, backoff_max=5.0, breaker_failures=100)
    state = Health("notes", settings=settings, clock=clock)
    waits = []
    for _ in range(5):
        state.starting()
        state.failed("exited (code 1)")
        waits.append(state.wait())
        clock.advance(state.wait())
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert state.restarts == 4
    assert state.last_error == "exited (code 1)"


def test_a_served_request_ends_the_failure_streak() -> None:
    state, clock = health()
    state.starting()
    state.failed("crashed")
    clock.advance(1.0)
    state.starting()
    state.started()
    state.succeeded()
    assert state.failures == 0
    state.failed("crashed again")
    assert state.wait() == 1.0  # the backoff starts over


def test_the_breaker_opens_after_repeated_failures_and_fails_fast() -> None:
    state, clock = health()
    for _ in range(3):
        clock.advance(state.wait())
        state.starting()
        state.failed("exited (code 3) at start")
    assert state.breaker == "open"
    with pytest.raises(RuntimeFailure) as caught:
        state.wait()
    assert caught.value.kind == "unavailable"
    assert "exited (code 3) at start" in str(caught.value)
    assert "retries in 60.0s" in str(caught.value)
    assert state.retry_in() == 60.0
    clock.advance(59.0)
    with pytest.raises(RuntimeFailure):
        state.wait()


def test_half_open_allows_one_probe_and_a_success_closes_it() -> None:
    state, clock = open_breaker()
    clock.advance(60.0)
    assert state.wait() == 0.0
    assert state.breaker == "half-open"
    state.starting()
    with pytest.raises(RuntimeFailure, match="probe start is under way"):
        state.wait()
    state.started()
    assert state.breaker == "closed"
    assert state.failures == 0
    assert state.wait() == 0.0


def test_a_failed_probe_opens_the_breaker_again() -> None:
    state, clock = open_breaker()
    clock.advance(60.0)
    state.wait()
    state.starting()
    state.failed("ping failed")
    assert state.breaker == "open"
    assert state.retry_in() == 60.0
    with pytest.raises(RuntimeFailure, match="ping failed"):
        state.wait()


def open_breaker() -> tuple[Health, FakeClock]:
    state, clock = health()
    for _ in range(3):
        clock.advance(state.wait())
        state.starting()
        state.failed("crashed")
    assert state.breaker == "open"
    return state, clock
