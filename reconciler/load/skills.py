"""Skill packs at load time: the checks of a Pipeline's `skill` steps, and the generator of the
shipped packs' JSON (`python -m reconciler.load.skills`, part of `make schemas`).

`skill_problems` is called where the other Pipeline checks are: a step's `skill` names a shipped
skill (with a "did you mean"), the Model it will call (the skill's, or the step's `with.model`)
is declared, and the `with` keys fit the skill's inputs (required ones given, no unknown one in a
closed schema). Values are checked at run time, after their templates are resolved.
Findings are (path in the document, message), as reconciler/load/pipelines.py gives them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Mapping
from typing import Any

from reconciler.load.messages import did_you_mean, dotted
from reconciler.load.yamlio import Path
from reconciler.skills.catalog import (
    MODEL_OVERRIDE,
    PACKS_DIR,
    UnknownSkill,
    find,
    pack_names,
    problems,
    skill_refs,
)

Finding = tuple[Path, str]


def skill_problems(spec: Mapping[str, Any], models: Collection[str]) -> list[Finding]:
    """Every problem of the `skill` steps in a Pipeline's `spec`; `models`: the declared Model
    names."""
    findings: list[Finding] = []
    for index, step in enumerate(spec.get("steps") or []):
        if not isinstance(step, Mapping) or not isinstance(step.get("skill"), str):
            continue
        at: Path = ("spec", "steps", index)
        ref = str(step["skill"])
        try:
            skill = find(ref)
        except UnknownSkill:
            guess = did_you_mean(ref, skill_refs())
            where: Path = (*at, "skill")
            findings.append((where, f'{dotted(where)}: no shipped skill "{ref}"{guess}'))
            continue
        given: Mapping[str, Any] = step.get("with") or {}
        model = given.get(MODEL_OVERRIDE, skill.model)
        if isinstance(model, str) and "${" not in model and model not in models:
            override = MODEL_OVERRIDE in given
            where = (*at, "with", MODEL_OVERRIDE) if override else (*at, "skill")
            findings.append(
                (
                    where,
                    f'{dotted(where)}: {ref} calls Model "{model}", which is not declared'
                    + did_you_mean(model, sorted(models))
                    + f" (declare it, or name another with `with.{MODEL_OVERRIDE}`)",
                )
            )
        findings += _input_keys(at, ref, skill.inputs, given, skill.defaults())
    return findings


def _input_keys(
    at: Path,
    ref: str,
    schema: Mapping[str, Any],
    given: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> list[Finding]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    keys = [key for key in given if key != MODEL_OVERRIDE]
    findings: list[Finding] = []
    if schema.get("additionalProperties") is False:
        for key in keys:
            if key not in properties:
                where: Path = (*at, "with", key)
                message = f'{dotted(where)}: {ref} has no input "{key}"'
                findings.append((where, message + did_you_mean(key, list(properties))))
    missing = [
        name for name in schema.get("required") or () if name not in given and name not in defaults
    ]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        plural = "s" * (len(missing) > 1)
        where = (*at, "with") if given else (*at, "skill")
        findings.append((where, f"{dotted(where)}: {ref} requires input{plural} {names}"))
    return findings


# --- the generator -----------------------------------------------------------------------------


def compile_pack(name: str) -> dict[str, Any]:
    """The checked document of shipped pack `name` from its YAML source. A shipped pack that
    does not check is a bug in Cloned, not a user mistake: `RuntimeError`."""
    from reconciler.load.yamlio import YamlProblem, parse

    path = PACKS_DIR / f"{name}.yaml"
    try:
        documents = parse(path.read_text(encoding="utf-8"))
    except (OSError, YamlProblem) as exc:
        raise RuntimeError(f"skill pack {path} cannot be read: {exc}") from exc
    if len(documents) != 1:
        raise RuntimeError(f"skill pack {path} must hold exactly one document")
    data = documents[0].data
    found = problems(data)
    if found:
        raise RuntimeError(f"skill pack {path} is invalid: " + "; ".join(found))
    if data["name"] != name:
        raise RuntimeError(f"skill pack {path} must be named {name!r}, not {data['name']!r}")
    return dict(data)


def render_json(name: str) -> str:
    """The committed text of `packs/NAME.json`."""
    return json.dumps(compile_pack(name), indent=2, sort_keys=True) + "\n"


def source_names() -> list[str]:
    """The packs with a YAML source."""
    return sorted(path.stem for path in PACKS_DIR.glob("*.yaml"))


def main() -> int:
    """Regenerate `packs/*.json` from the YAML sources (and drop JSON without one)."""
    names = source_names()
    for name in names:
        path = PACKS_DIR / f"{name}.json"
        text = render_json(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for stale in set(pack_names()) - set(names):
        (PACKS_DIR / f"{stale}.json").unlink()
        print(f"removed {PACKS_DIR / f'{stale}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
