"""Field diffs and the order of changes."""

from __future__ import annotations

from reconciler.engine.diff import diff_states
from reconciler.plan.types import ABSENT, FieldDiff


def test_nested_changes_are_leaf_paths_and_lists_are_leaves() -> None:
    before = {"spec": {"limits": {"calls": 5, "tokens": 10}, "tags": ["a"], "flag": True}}
    after = {"spec": {"limits": {"calls": 5.0, "cost_usd": 1}, "tags": ["a", "b"], "flag": 1}}
    assert diff_states(before, after) == [
        FieldDiff("spec.flag", True, 1),
        FieldDiff("spec.limits.cost_usd", ABSENT, 1),
        FieldDiff("spec.limits.tokens", 10, ABSENT),
        FieldDiff("spec.tags", ["a"], ["a", "b"]),
    ]


def test_create_and_delete_list_every_leaf() -> None:
    state = {"metadata": {"labels": {}}, "spec": {"a": {"b": 1}}}
    # An empty mapping has no leaves, so it adds nothing to the diff.
    assert diff_states(None, state) == [FieldDiff("spec.a.b", ABSENT, 1)]
    assert diff_states(state, None) == [FieldDiff("spec.a.b", 1, ABSENT)]
    assert diff_states(state, state) == []
