"""`connectors lock NAME`: resolve a pypi Connector's dependency closure and write the hash
lock its `source.pypi.lock` names (a path relative to `.cloned/`), atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ClonedError, ExitCode
from reconciler.packages.pypi import LockFile

if TYPE_CHECKING:
    from reconciler.load.resources import LoadedResource

__all__ = ["Locked", "lock_connector"]


@dataclass(frozen=True)
class Locked:
    """The lock written for Connector `connector`: where, what it pins, whether it changed."""

    connector: str
    package: str
    version: str
    file: str  # relative to the repository root
    lock: LockFile
    changed: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "package": self.package,
            "version": self.version,
            "lock_file": self.file,
            "digest": self.lock.digest,
            "changed": self.changed,
            "distributions": [
                {"name": pin.name, "version": pin.version, "sha256": list(pin.hashes)}
                for pin in self.lock.pins
            ],
        }


def lock_connector(*, path: Path, name: str, python: Path | None = None) -> Locked:
    """Lock Connector `name` of the workspace containing `path` for `python` (default: the
    interpreter running Cloned); a Connector that is missing or not a pypi source is a
    `ClonedError`, an invalid desired state `ValidationFailed`."""
    from reconciler.atomic import write_atomic
    from reconciler.load.files import CLONED_DIR
    from reconciler.load.workspace import load_desired_state
    from reconciler.model.kinds import Connector
    from reconciler.packages.pypi import lock
    from reconciler.packages.pypi.lockfile import lock_location

    desired = load_desired_state(path)
    found = _connector(desired.resources, name)
    model = found.model
    assert isinstance(model, Connector)
    source = model.spec.source
    if source.pypi is None:
        kind = next((key for key in ("registry", "path", "builtin") if getattr(source, key)), "")
        raise ClonedError(
            f"{found.origin}: Connector {name!r} has a {kind or 'non-pypi'} source; "
            "only pypi sources are locked"
        )
    target = lock_location(
        desired.root / CLONED_DIR, source.pypi.lock, file=found.file, line=found.line
    )
    locked = lock(package=source.pypi.package, version=model.spec.version, python=python)
    text = locked.text()
    changed = not target.is_file() or target.read_bytes() != text.encode()
    if changed:
        write_atomic(target, text)
    rel = target.relative_to(desired.root).as_posix()
    return Locked(name, source.pypi.package, model.spec.version, rel, locked, changed)


def _connector(resources: tuple[LoadedResource, ...], name: str) -> LoadedResource:
    """The declared Connector `name`; a `ClonedError` listing those declared otherwise."""
    for resource in resources:
        if resource.kind == "Connector" and resource.name == name:
            return resource
    names = sorted(r.name for r in resources if r.kind == "Connector")
    declared = ", ".join(names) if names else "none"
    raise ClonedError(f"no Connector named {name!r} in .cloned/ (declared: {declared})")
