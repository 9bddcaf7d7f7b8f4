"""Skill packs: versioned prompt, model, tools, budget and output schema, shipped with Cloned
and run by a pipeline's `skill` steps (specs/skills.md; the step itself is reconciler.runs)."""
