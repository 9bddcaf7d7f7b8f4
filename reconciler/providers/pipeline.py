"""Pipeline: the steps a Run executes, recorded as applied so a run reads the reviewed version.

The applied record is all there is (nothing installs or runs at apply): the runner executes
the Pipeline of the state database, never uncommitted YAML. What registering one checks runs
before: its templates at load (reconciler/load/pipelines.py), its tools against the planned
connectors at plan (reconciler/engine/pipelines.py). A new pipeline is low risk (it does
nothing until a Run names it); changing one changes what later runs do, so medium."""

from __future__ import annotations

from reconciler.plan.types import Action, FieldDiff, Risk
from reconciler.providers.base import RecordProvider


class PipelineProvider(RecordProvider):
    kind = "Pipeline"

    def risk(self, action: Action, diff: tuple[FieldDiff, ...]) -> Risk:
        if action == "create":
            return "low"
        if action in ("delete", "replace"):
            return "high"
        return "medium"
