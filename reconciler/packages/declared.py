"""What a package declares, in the one form that the registry's signed metadata carries
(`custom.cloned`), that plans show (`package.declared`) and that policy compares: name,
version, publisher, description, tools, egress hosts, secrets, how it runs, requirements."""

from __future__ import annotations

from typing import Any

from reconciler.model.manifest import Manifest


def declared_block(manifest: Manifest) -> dict[str, Any]:
    """The declared block of `manifest` (a registry target's `custom.cloned`)."""
    return {
        "name": manifest.name,
        "version": manifest.version,
        "publisher": manifest.publisher,
        "description": manifest.description,
        "tools": list(manifest.tools),
        "egress_hosts": list(manifest.egress.hosts),
        "secrets": [secret.model_dump(exclude_none=True) for secret in manifest.secrets],
        "run": {"command": list(manifest.run.command)},
        "requirements": manifest.requirements,
    }
