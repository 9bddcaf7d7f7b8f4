"""`lock`: resolve a PyPI connector's dependency closure with pip and pin every distribution by
sha256 (what `cloned connectors lock` writes).

pip resolves as a real install would (`install --dry-run --ignore-installed --report`, wheels
only, for the target interpreter), so the lock holds exactly what pip would install there; its
report gives each distribution's sha256 (from the index, or hashed by pip for a local file).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from reconciler import __version__
from reconciler.canonical import parse_json
from reconciler.errors import ClonedError, UsageError
from reconciler.packages.pypi.lockfile import LockFile, Pin, make_lock
from reconciler.packages.pypi.pip import run_pip

INSTALL_COMMAND = "pip install --require-hashes --no-deps --only-binary :all: -r THIS_FILE"


def lock(*, package: str, version: str, python: Path | None = None) -> LockFile:
    """The hash lock of `package==version` and its dependency closure, for `python` (default:
    the interpreter running Cloned)."""
    requirement = _requirement(package, version)
    with tempfile.TemporaryDirectory(prefix="cloned-lock-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--only-binary", ":all:"]
        run_pip(
            [*args, "--quiet", "--report", str(report), requirement],
            python=python,
            what=f"locking {requirement}",
        )
        data = _report(report.read_bytes(), requirement)
    pins = [_pin(item, requirement) for item in data["install"]]
    locked = make_lock(pins, _header(requirement, data.get("environment")))
    top = locked.get(package)
    if top is None or Version(top.version) != Version(version):
        raise ClonedError(f"locking {requirement}: pip's resolution does not hold {requirement}")
    return locked


def _requirement(package: str, version: str) -> str:
    """`name==version`, refused unless both are plain (nothing pip could read as an option)."""
    try:
        name = canonicalize_name(package, validate=True)
        Version(version)
    except (InvalidName, InvalidVersion) as exc:
        raise UsageError(f"cannot lock {package!r} {version!r}: {exc}") from None
    return f"{name}=={version}"


def _report(raw: bytes, requirement: str) -> dict[str, Any]:
    try:
        data = parse_json(raw)
    except ValueError as exc:
        raise ClonedError(f"locking {requirement}: pip's report is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("install"), list):
        raise ClonedError(f"locking {requirement}: pip's report has no install list")
    return data


def _pin(item: Any, requirement: str) -> Pin:
    """One distribution of pip's report as a pin; an index that gave no sha256 is an error,
    since a lock without one cannot be checked."""
    try:
        metadata = item["metadata"]
        name, version = canonicalize_name(metadata["name"]), str(metadata["version"])
        archive = item["download_info"]["archive_info"]
    except (KeyError, TypeError):
        raise ClonedError(f"locking {requirement}: pip's report lacks a wheel's details") from None
    sha256 = (archive.get("hashes") or {}).get("sha256")
    legacy = str(archive.get("hash", ""))
    if sha256 is None and legacy.startswith("sha256="):
        sha256 = legacy.removeprefix("sha256=")
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ClonedError(
            f"locking {requirement}: the index gave no sha256 for {name}=={version}",
            hint="use an index that publishes sha256 hashes (PyPI does)",
        )
    return Pin(name, version, (sha256.lower(),))


def _header(requirement: str, environment: Any) -> tuple[str, ...]:
    """What made the lock, and for which interpreter and platform (from pip's own markers)."""
    env = environment if isinstance(environment, dict) else {}
    python = f"{env.get('implementation_name', '?')} {env.get('python_full_version', '?')}"
    platform = f"{env.get('sys_platform', '?')} {env.get('platform_machine', '?')}"
    return (
        f"Hash lock of {requirement}, made by `cloned connectors lock` (Cloned {__version__}).",
        f"For Python {python} on {platform}; wheels only.",
        f"Install: {INSTALL_COMMAND}",
    )
