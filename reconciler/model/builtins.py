"""Names of what ships with Cloned and may be referenced without being declared."""

from __future__ import annotations

from reconciler.data import data_dir

BUILTIN_POLICY_PACKS = ("baseline", "strict")
"""The built-in policy packs (SPEC section 11) a Workspace may list or a PolicyPack extend."""


def builtin_blueprints() -> list[str]:
    """Names of the blueprints shipped in `blueprints/` (one `NAME.yaml` each)."""
    folder = data_dir("blueprints")
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.yaml"))
