"""The provider protocol on a real state database: providers read and write actual state."""

from __future__ import annotations

from pathlib import Path

from reconciler.canonical import digest
from reconciler.engine import actual
from reconciler.plan.types import Change, Decision, ProposedChange
from reconciler.providers.base import ActualResource, ApplyContext
from reconciler.providers.lookup import managed_kinds, provider_for
from reconciler.state.db import StateDB

LIMITED = {"metadata": {"name": "daily"}, "spec": {"limits": {"calls": 100}, "period": "day"}}


def create(after: dict[str, object]) -> Change:
    proposed = ProposedChange(
        "budget.daily", "Budget", "daily", "create", None, after, (), "low", "b.yaml:1", True
    )
    return Change(proposed, Decision("auto"))


def test_what_a_provider_applies_it_reads_back_and_can_restore(tmp_path: Path) -> None:
    provider = provider_for("Budget")
    assert provider is not None
    with StateDB.open(tmp_path) as db:
        with db.transaction() as connection:
            provider.apply(
                ApplyContext(connection, "plan-1", "2026-01-01T12:00:00Z"), create(LIMITED)
            )
        applied = provider.read_actual(db)
        assert list(applied) == ["budget.daily"]
        assert applied["budget.daily"].state == LIMITED
        assert applied["budget.daily"].digest == digest(LIMITED)
        assert provider.health(tmp_path, applied["budget.daily"]).status == "ok"
        # Drift repair: a tampered row goes back to the state the audit log vouches for.
        tampered = {**LIMITED, "spec": {"limits": {"calls": 9999}, "period": "day"}}
        with db.transaction() as connection:
            provider.restore(
                ApplyContext(connection, "plan-2", "2026-01-01T13:00:00Z"),
                ActualResource("budget.daily", "Budget", "daily", tampered, digest(tampered), "x"),
            )
            provider.restore(
                ApplyContext(connection, "plan-3", "2026-01-01T13:00:00Z"), applied["budget.daily"]
            )
        assert provider.read_actual(db) == applied
        # The engine's view of the whole actual state is the union of what providers read.
        assert actual.from_db(db).resources == applied
        for kind in managed_kinds() - {"Budget"}:
            other = provider_for(kind)
            assert other is not None and other.read_actual(db) == {}
        # A resource no audit event applied is taken away the same way.
        with db.transaction() as connection:
            provider.remove(
                ApplyContext(connection, "plan-4", "2026-01-01T14:00:00Z"), "budget.daily"
            )
        assert provider.read_actual(db) == {}
