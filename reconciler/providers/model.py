"""Model: a chat-completions endpoint that pipelines' `model` steps send prompts to. The
applied record is all there is: the runner builds its client (`reconciler.models.client`) from
the applied Model, never from uncommitted YAML, so what agents' data reaches is what was
reviewed. A Model's host is where that data goes: pointing one at another URL, model or key is
high risk, like pointing a Registry elsewhere; its price and description are low."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider

DESTINATION = frozenset({"spec.baseUrl", "spec.model", "spec.apiKey", "spec.api"})
"""The fields that decide where prompts go and under which credentials."""


class ModelProvider(RecordProvider):
    kind = "Model"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action == "create":
            return "medium"
        if action in ("delete", "replace"):
            return "high"
        return "high" if any(d.path in DESTINATION for d in diff) else "low"
