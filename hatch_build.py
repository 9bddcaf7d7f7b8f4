"""Wheel build hook: generate the builtin connectors' digest manifest at build time.

It writes `reconciler/_data/connectors/digests.json` into the wheel from the connector folders
being packed (reconciler/packages/builtin.py), so an installed Cloned verifies its builtins
against what was built. It refuses to build when the committed `connectors/digests.json`, which
source checkouts use, says anything else: run `make schemas` and commit the result.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DEST = "reconciler/_data/connectors/digests.json"


class DigestsHook(BuildHookInterface):  # type: ignore[misc]
    """Generates the builtin digest manifest for the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compute the digests, check the committed copy, and add the generated file."""
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        sys.path.insert(0, str(root))
        try:
            from reconciler.packages.builtin import DIGESTS, compute, recorded_declared, render
        finally:
            sys.path.remove(str(root))
        connectors = root / "connectors"
        committed = connectors / DIGESTS
        recorded = committed.read_text(encoding="utf-8") if committed.is_file() else "{}"
        # The trees are computed here; the declared blocks are the committed ones (parsing
        # manifests needs libraries a build environment lacks; a changed connector.yaml
        # changes its tree digest, so a stale block is still caught).
        text = render(compute(connectors), recorded_declared(recorded))
        if recorded != text:
            raise RuntimeError(f"{committed} is stale or missing: run `make schemas` and commit it")
        self._folder = Path(tempfile.mkdtemp(prefix="cloned-digests-"))
        generated = self._folder / DIGESTS
        generated.write_text(text, encoding="utf-8")
        build_data["force_include"][str(generated)] = DEST

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the generated file once the wheel holds it."""
        folder = getattr(self, "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
