"""The built-in policy packs (`baseline`, `strict`), shipped as PolicyPack YAML in `packs/`.

Flow: `builtin_pack(name)` reads `packs/NAME.yaml`, parses it with the loader's safe parser,
validates it with the same model as a workspace's own packs, and parses the result into a
`Pack`; the result is cached for the life of the process. Validation imports pydantic (lazily,
inside `reconciler.load.validate`), so the cost is paid once, on first use.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from reconciler.errors import ClonedError
from reconciler.model.builtins import BUILTIN_POLICY_PACKS
from reconciler.policy.rules import Pack, parse_pack

PACKS_DIR = Path(__file__).resolve().parent / "packs"


def builtin_pack(name: str) -> Pack:
    """The built-in pack called `name`, or a `ClonedError` when there is none."""
    if name not in BUILTIN_POLICY_PACKS:
        known = ", ".join(BUILTIN_POLICY_PACKS)
        raise ClonedError(f'no built-in policy pack named "{name}" (built-in packs: {known})')
    return _load(name)


@functools.cache
def _load(name: str) -> Pack:
    return parse_pack(name, builtin_pack_data(name), builtin=True)


def builtin_pack_data(name: str) -> dict[str, Any]:
    """The normalised document of built-in pack `name`, validated like any PolicyPack.

    A built-in pack that does not validate is a bug in Cloned, not a user mistake, so this
    raises `RuntimeError` rather than a `ClonedError`.
    """
    from reconciler.load.validate import validate_document
    from reconciler.load.yamlio import YamlProblem, parse

    path = PACKS_DIR / f"{name}.yaml"
    try:
        documents = parse(path.read_text(encoding="utf-8"))
    except (OSError, YamlProblem) as exc:
        raise RuntimeError(f"built-in policy pack {path} cannot be read: {exc}") from exc
    if len(documents) != 1:
        raise RuntimeError(f"built-in policy pack {path} must hold exactly one document")
    findings, data = validate_document(documents[0].data)
    if findings or data is None:
        details = "; ".join(finding.message for finding in findings)
        raise RuntimeError(f"built-in policy pack {path} is invalid: {details}")
    if data["kind"] != "PolicyPack" or data["metadata"]["name"] != name:
        raise RuntimeError(f"built-in policy pack {path} must be PolicyPack {name!r}")
    return data
