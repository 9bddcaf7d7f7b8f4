"""Which changed fields provably tighten what a resource allows. Pure functions, no I/O.

Flow: `match.matches` asks `tightens(kind, item)` for each selected diff entry when a rule
gives `tightens:`. The built-in packs gate every Budget, Connector and SecretRef change that is
not provably tightening, rather than listing the fields that widen: a field nobody thought of
(a Budget's `scope`, a Connector's `sandbox.profile`) then needs approval by default.

What tightens is a property of the resource model, not of a policy, so it is fixed here and
documented in `specs/policy.md`. A field not listed never tightens.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from reconciler.plan.types import ABSENT, FieldDiff


def _absent(value: Any) -> bool:
    return value is ABSENT or value is None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def lower(before: Any, after: Any) -> bool:
    """A limit went down, or appeared where there was none (a new limit narrows)."""
    if not _number(after):
        return False
    return _absent(before) or (_number(before) and after < before)


def fewer(before: Any, after: Any) -> bool:
    """A list of what is allowed lost elements and gained none (emptied or removed too)."""
    after_items = [] if _absent(after) else after
    before_items = [] if _absent(before) else before
    if not isinstance(after_items, list) or not isinstance(before_items, list):
        return False
    return all(element in before_items for element in after_items)


def fewer_not_empty(before: Any, after: Any) -> bool:
    """Like `fewer`, but an empty list is the default "no allow list", which is not narrower."""
    return isinstance(after, list) and len(after) > 0 and fewer(before, after)


def more(before: Any, after: Any) -> bool:
    """A list of what is denied gained elements and lost none."""
    if not isinstance(after, list):
        return False
    before_items = [] if _absent(before) else before
    return isinstance(before_items, list) and all(e in after for e in before_items)


def switched_off(before: Any, after: Any) -> bool:
    """A switch went from on (or unset) to off."""
    return after is False


def stricter(*order: str) -> Callable[[Any, Any], bool]:
    """A setting moved up `order` (weakest first); from unset only the strictest is provable,
    because unset inherits a default that may be anywhere in the order."""

    def check(before: Any, after: Any) -> bool:
        if after not in order:
            return False
        if _absent(before):
            return bool(after == order[-1])
        return before in order and order.index(after) > order.index(before)

    return check


def repaired(before: Any, after: Any) -> bool:
    """Damage to what is installed went away: the same package installed afresh."""
    return _absent(after)


def gone(before: Any, after: Any) -> bool:
    """Something served or sent was taken away (a pinned tool, a Model's API key removed)."""
    return _absent(after)


def derived(before: Any, after: Any) -> bool:
    """A digest of fields judged on their own (the tool-name set digest follows `tools.names`)."""
    return True


def added(before: Any, after: Any) -> bool:
    """A reference that constrains (a Pipeline's budget) was set where there was none."""
    return _absent(before) and not _absent(after)


TIGHTENING: dict[str, tuple[tuple[str, Callable[[Any, Any], bool]], ...]] = {
    "Budget": (
        ("spec.limits.*", lower),
        ("spec.onExceed", stricter("requireApproval", "block")),
    ),
    "Connector": (
        ("spec.enabled", switched_off),
        ("spec.tools.allow", fewer_not_empty),
        ("spec.tools.deny", more),
        ("spec.egress.allowHosts", fewer),
        ("spec.egress.insecureHosts", fewer),
        ("spec.secrets", fewer),
        ("spec.limits.*", lower),
        ("spec.sandbox.profile", stricter("none", "standard", "strict")),
        ("spec.allowDowngrade", switched_off),
        ("package.declared.tools", fewer),
        ("package.declared.egress_hosts", fewer),
        ("package.declared.secrets", fewer),
        ("installed", repaired),
        ("tools.names", fewer),
        ("tools.set", derived),
        ("tools.flagged", fewer),
        ("tools.pins.*", gone),
    ),
    "SecretRef": (
        ("spec.usedBy.connectors", fewer),
        ("spec.usedBy.pipelines", fewer),
    ),
    "Model": (("spec.apiKey", gone),),
    "Pipeline": (("spec.budget", added),),
}
"""Per kind: (path glob, test) for the fields that can tighten, and how."""


def tightens(kind: str, item: FieldDiff) -> bool:
    """Whether this changed field of a `kind` resource provably narrows what it allows."""
    for glob, check in TIGHTENING.get(kind, ()):
        if fnmatch.fnmatchcase(item.path, glob):
            return check(item.before, item.after)
    return False
