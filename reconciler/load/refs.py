"""Checks across resources: unique names, exactly one Workspace, references that resolve.

Runs on plain validated data (no pydantic), so it costs the same on a cache hit as on a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from reconciler.load import pipelines
from reconciler.load.messages import did_you_mean, dotted
from reconciler.load.resources import LoadedResource
from reconciler.load.yamlio import Path
from reconciler.model.builtins import BUILTIN_POLICY_PACKS, builtin_blueprints


@dataclass(frozen=True)
class CrossFinding:
    """A problem found across resources, located at `at` inside `resource` (or nowhere)."""

    resource: LoadedResource | None
    at: Path
    message: str
    related: LoadedResource | None = None
    dangling: bool = False  # a reference to a resource that is not declared


Reference = tuple[Path, str, Any]
"""(where in the document, the kind it must name, the name found there)"""


def check(
    resources: list[LoadedResource], *, also_declared: AbstractSet[tuple[str, str]] = frozenset()
) -> list[CrossFinding]:
    """Every cross-resource problem in `resources`.

    `also_declared` names (kind, name) of documents that failed validation: they count as
    existing, so one typo does not also show up as a dangling reference elsewhere.
    """
    findings = list(_duplicates(resources))
    if not any(kind == "Workspace" for kind, _ in also_declared):
        findings += _workspace_count(resources)
    by_kind: dict[str, dict[str, LoadedResource]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, {}).setdefault(resource.name, resource)
    known = _Known(by_kind, also_declared)
    for resource in resources:
        for at, target, name in _references(resource):
            candidates = known.names(target)
            if name not in candidates:
                findings.append(_missing(resource, at, target, name, sorted(candidates)))
        internal = _INTERNAL.get(resource.kind)
        if internal is not None:
            findings += internal(resource)
        if resource.kind == "Run":
            pipeline = by_kind.get("Pipeline", {}).get(resource.spec.get("pipeline", ""))
            if pipeline is not None:
                findings += _run_inputs(resource, pipeline)
        if resource.kind == "Pipeline":
            from reconciler.load.skills import skill_problems

            findings += [
                CrossFinding(resource, at, message)
                for at, message in skill_problems(resource.spec, known.names("Model"))
            ]
    return findings


class _Known:
    """Names a reference may resolve to: declared resources, and built-ins where allowed."""

    def __init__(
        self, by_kind: dict[str, dict[str, LoadedResource]], extra: AbstractSet[tuple[str, str]]
    ) -> None:
        self._by_kind = by_kind
        self._extra = extra
        self._memo: dict[str, set[str]] = {}

    def names(self, target: str) -> set[str]:
        """The set of names `target` references may use, computed once per target."""
        found = self._memo.get(target)
        if found is None:
            found = self._memo[target] = self._compute(target)
        return found

    def _compute(self, target: str) -> set[str]:
        if target == "PolicyPack@builtin":
            return set(BUILTIN_POLICY_PACKS)
        if target == "Blueprint@builtin":
            return set(builtin_blueprints())
        declared = set(self._by_kind.get(target, {}))
        declared |= {name for kind, name in self._extra if kind == target}
        return declared | set(BUILTIN_POLICY_PACKS) if target == "PolicyPack" else declared


def _run_inputs(run: LoadedResource, pipeline: LoadedResource) -> list[CrossFinding]:
    declared: dict[str, Any] = pipeline.spec.get("inputs") or {}
    given: dict[str, Any] = run.spec.get("inputs") or {}
    findings = [
        CrossFinding(
            run,
            ("spec", "inputs", name),
            f'spec.inputs: pipeline "{pipeline.name}" has no input "{name}"'
            + did_you_mean(name, list(declared)),
        )
        for name in given
        if name not in declared
    ]
    findings += [
        CrossFinding(run, at, message)
        for at, message in pipelines.run_type_findings(given, declared)
    ]
    missing = [
        name
        for name, spec in declared.items()
        if spec.get("required") and spec.get("default") is None and name not in given
    ]
    if missing:
        findings.append(
            CrossFinding(
                run,
                ("spec", "pipeline"),
                f'spec.inputs: pipeline "{pipeline.name}" requires input'
                f"{'s' if len(missing) > 1 else ''} " + ", ".join(f'"{name}"' for name in missing),
            )
        )
    return findings


def _duplicates(resources: list[LoadedResource]) -> Iterator[CrossFinding]:
    first: dict[tuple[str, str], LoadedResource] = {}
    for resource in resources:
        key = (resource.kind, resource.name)
        if key in first:
            other = first[key]
            yield CrossFinding(
                resource,
                ("metadata", "name"),
                f'{resource.kind} "{resource.name}" is defined twice: here and at',
                related=other,
            )
        else:
            first[key] = resource


def _workspace_count(resources: list[LoadedResource]) -> list[CrossFinding]:
    workspaces = [resource for resource in resources if resource.kind == "Workspace"]
    if not workspaces:
        return [
            CrossFinding(None, (), "no Workspace resource: exactly one is required (cloned init)")
        ]
    first = workspaces[0]
    return [
        CrossFinding(
            extra,
            ("kind",),
            f'a second Workspace ("{extra.name}"): exactly one is allowed, and '
            f'"{first.name}" is declared at',
            related=first,
        )
        for extra in workspaces[1:]
        if extra.name != first.name  # same name: already reported as defined twice
    ]


_LABELS = {
    "Blueprint@builtin": "built-in blueprint",
    "PolicyPack@builtin": "built-in policy pack",
    "PolicyPack": "PolicyPack or built-in pack",
}


def _missing(
    resource: LoadedResource, at: Path, target: str, name: Any, known: list[str]
) -> CrossFinding:
    label = _LABELS.get(target, target)
    guess = did_you_mean(str(name), known)
    where = dotted(at)
    return CrossFinding(resource, at, f'{where}: no {label} named "{name}"{guess}', dangling=True)


def _items(spec: dict[str, Any], *keys: str) -> Iterator[tuple[Path, Any]]:
    """(path, value) for each entry of the list at `spec.keys...`, or the scalar there."""
    node: Any = spec
    for key in keys:
        if not isinstance(node, dict) or node.get(key) is None:
            return
        node = node[key]
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield ("spec", *keys, index), item
    else:
        yield ("spec", *keys), node


def _references(resource: LoadedResource) -> Iterator[Reference]:
    spec = resource.spec
    for keys, target in _REFERENCES.get(resource.kind, ()):
        for at, value in _items(spec, *keys):
            yield at, target, value
    if resource.kind == "Pipeline":
        for index, step in enumerate(spec.get("steps") or []):
            tool = step.get("tool") or {}
            if "connector" in tool:
                yield ("spec", "steps", index, "tool", "connector"), "Connector", tool["connector"]
            model = step.get("model") or {}
            if "name" in model:
                yield ("spec", "steps", index, "model", "name"), "Model", model["name"]


_REFERENCES: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "Workspace": ((("policyPacks",), "PolicyPack"),),
    "PolicyPack": ((("extends",), "PolicyPack@builtin"),),
    "Budget": ((("scope", "connector"), "Connector"), (("scope", "pipeline"), "Pipeline")),
    "Connector": ((("secrets",), "SecretRef"), (("source", "registry", "name"), "Registry")),
    "SecretRef": ((("usedBy", "connectors"), "Connector"), (("usedBy", "pipelines"), "Pipeline")),
    "Model": ((("apiKey",), "SecretRef"),),
    "Blueprint": ((("source", "builtin"), "Blueprint@builtin"),),
    "Pipeline": ((("budget",), "Budget"),),
    "Run": ((("pipeline",), "Pipeline"),),
}


def _unique(
    resource: LoadedResource, keys: tuple[str, ...], field: str, what: str
) -> list[CrossFinding]:
    findings = []
    seen: dict[Any, int] = {}
    for at, item in _items(resource.spec, *keys):
        value = item.get(field) if isinstance(item, dict) else None
        if value is None:
            continue
        if value in seen:
            findings.append(
                CrossFinding(
                    resource,
                    (*at, field),
                    f'{what} "{value}" appears twice '
                    f"(first at {dotted(('spec', *keys, seen[value]))})",
                )
            )
        else:
            seen[value] = int(at[-1])
    return findings


def _workspace_internal(resource: LoadedResource) -> list[CrossFinding]:
    return _unique(resource, ("approvers",), "name", "approver name") + _shared_keys(resource)


def _shared_keys(resource: LoadedResource) -> list[CrossFinding]:
    """One key, one approver: keys are compared by their material (type and base64), the
    comment ignored, so one person cannot count as two approvers under two names."""
    findings = []
    seen: dict[tuple[str, ...], tuple[int, str]] = {}
    for at, item in _items(resource.spec, "approvers"):
        value = item.get("publicKey") if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        material = tuple(value.split()[:2])
        name = str(item.get("name"))
        if material in seen:
            first, other = seen[material]
            findings.append(
                CrossFinding(
                    resource,
                    (*at, "publicKey"),
                    f'approver "{name}" has the key of approver "{other}" (at '
                    f"{dotted(('spec', 'approvers', first, 'publicKey'))}): one key, one "
                    "approver; comments do not make keys different",
                )
            )
        else:
            seen[material] = (int(at[-1]), name)
    return findings


def _pipeline_internal(resource: LoadedResource) -> list[CrossFinding]:
    findings = _unique(resource, ("steps",), "name", "step name")
    return findings + [
        CrossFinding(resource, at, message)
        for at, message in pipelines.pipeline_findings(resource.spec)
    ]


def _policy_internal(resource: LoadedResource) -> list[CrossFinding]:
    findings = _unique(resource, ("rules",), "name", "rule name")
    if resource.name in BUILTIN_POLICY_PACKS:
        # A declared "baseline" would replace the built-in one wherever policyPacks names it.
        findings.append(
            CrossFinding(
                resource,
                ("metadata", "name"),
                f'metadata.name: "{resource.name}" is the name of a built-in policy pack; '
                f"choose another name (to overlay it, set spec.extends: {resource.name})",
            )
        )
    return findings


_INTERNAL: dict[str, Callable[[LoadedResource], list[CrossFinding]]] = {
    "Workspace": _workspace_internal,
    "Pipeline": _pipeline_internal,
    "PolicyPack": _policy_internal,
}


GRANTS = frozenset({"SecretRef"})
"""Kinds whose references grant rather than depend: a SecretRef's `usedBy` names who may use
it, and what uses it (a Connector's `secrets`) depends on it, so it applies first."""


LIMITS = frozenset({("Budget", "Pipeline")})
"""(kind, target) references that name what a resource limits rather than what it needs: a
Budget scoped to a pipeline applies before it, since the Pipeline names its `budget` too."""


def dependencies(resource: LoadedResource) -> list[tuple[str, str]]:
    """(kind, name) of every resource this one must follow (built-ins, grants and limits
    excluded)."""
    if resource.kind in GRANTS:
        return []
    found = []
    for _, target, name in _references(resource):
        if "@" in target or (resource.kind, target) in LIMITS:
            continue
        if isinstance(name, str):
            found.append((target, name))
    return found
