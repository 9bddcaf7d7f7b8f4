"""Runs: executing Pipelines, step by step, through the governed call path (specs/runs.md).

`runner` executes (and resumes) one run from its journal in the state database; `gates` pauses
a step behind a signed approval; `modelstep` makes a model step's call within the token and
cost budgets; `outputs` resolves a finished run's outputs and hands them, with the facts of its
provenance, to `artifacts.publish`. Beside the engine and the governed layer: apply queues a
run (the Run provider), and the use cases execute it after the apply."""
