"""A connector's own virtual environment, built from a hash lock and nothing else.

Serves every source that brings Python dependencies: a pypi Connector's lock, and the
`requirements:` lock of a registry or path package. A venv cannot be moved once made (its
scripts hold absolute paths), so it is built at its final path and a completion marker
(`.cloned-env.json`: the lock's digest and a sha256 of every installed file) is written last.
A folder without a valid marker is never used: `build_env` removes and rebuilds it, and
`verify_env` reports it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from reconciler.atomic import ensure_private_dir, write_atomic
from reconciler.canonical import canonical_json, parse_json
from reconciler.canonical import digest as canonical_digest
from reconciler.errors import ClonedError
from reconciler.packages.pypi.lockfile import LockFile
from reconciler.packages.pypi.pip import QUIET_FLAGS, run_pip
from reconciler.packages.refusal import PackageRefused

MARKER = ".cloned-env.json"
MARKER_FORMAT = 1
INSTALL_FLAGS = (
    "--require-hashes",
    "--no-deps",
    "--only-binary",
    ":all:",
    "--no-warn-script-location",
)
_NOT_SCRIPTS = frozenset({"python", "python3", "activate", "activate.csh", "activate.fish"})


@dataclass(frozen=True)
class Env:
    """A completed environment: where it is, the lock it holds and the digest of its files."""

    path: Path
    lock_digest: str
    files_digest: str

    @property
    def python(self) -> Path:
        """The environment's interpreter (what `python` in a connector's command means)."""
        return self.path / "bin" / "python"

    def entry(self, name: str) -> Path:
        """The console script `name`; `PackageRefused("not-found")` listing those there are."""
        script = self.path / "bin" / name
        if "/" not in name and script.is_file():
            return script
        there = ", ".join(scripts(self.path)) or "none"
        raise PackageRefused(
            "not-found", f"{self.path}: no console script {name!r} (it has: {there})"
        )


def build_env(
    lock: LockFile, env: Path, *, python: Path | None = None, trusted: Collection[str] = ()
) -> Env:
    """The environment at `env` holding exactly `lock`: the completed one already there when
    it matches, is intact and has a files digest in `trusted` (one Cloned recorded when it
    built it), else built afresh (a failure leaves nothing at `env`).

    A marker only proves that the files are those it lists, not who wrote them: a folder
    committed under `.cloned/state/`, or put there by hand, carries a marker as valid as one
    this function wrote, so without `trusted` nothing found at `env` is ever reused."""
    existing = open_env(env)
    if (
        existing is not None
        and existing.lock_digest == lock.digest
        and existing.files_digest in trusted
        and not verify_env(env)
    ):
        return existing
    remove_env(env)
    try:
        _create(env, python)
        _install(lock, env)
        return _complete(env, lock)
    except BaseException:
        remove_env(env)
        raise


def open_env(env: Path) -> Env | None:
    """The completed environment at `env`, or None when its marker is missing or invalid."""
    marker = _read_marker(env)
    if marker is None:
        return None
    return Env(env, marker["lock_digest"], marker["files_digest"])


def verify_env(env: Path, *, files_digest: str | None = None) -> list[str]:
    """What differs between the files in `env` and its marker (and, given `files_digest`,
    the digest recorded at install); empty when intact."""
    marker = _read_marker(env)
    if marker is None:
        return [f"{env}: not a completed environment (no valid {MARKER}): rebuild it"]
    differences = []
    if files_digest is not None and marker["files_digest"] != files_digest:
        differences.append(f"{env}/{MARKER}: not the files digest recorded at install")
    recorded: dict[str, str] = marker["files"]
    current = hash_tree(env)
    for rel in sorted(recorded.keys() | current.keys()):
        if rel not in current:
            differences.append(f"missing: {rel}")
        elif rel not in recorded:
            differences.append(f"added: {rel}")
        elif recorded[rel] != current[rel]:
            differences.append(f"changed: {rel}")
    return differences


def remove_env(env: Path) -> None:
    """Remove `env`, its marker first, so a removal cut short never looks complete."""
    (env / MARKER).unlink(missing_ok=True)
    if env.is_symlink() or env.is_file():
        env.unlink()
    elif env.exists():
        shutil.rmtree(env)


def scripts(env: Path) -> list[str]:
    """The console scripts in `env/bin` (not the interpreter or the activation scripts)."""
    folder = env / "bin"
    if not folder.is_dir():
        return []
    names = (p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())
    return sorted(n for n in names if n not in _NOT_SCRIPTS and not n.startswith("Activate"))


def hash_tree(env: Path) -> dict[str, str]:
    """sha256 of every file under `env` (a symlink by its target), by relative path; the
    marker itself is left out."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(env):
        base = Path(folder)
        for name in (*files, *(d for d in dirs if (base / d).is_symlink())):
            path = base / name
            rel = path.relative_to(env).as_posix()
            if rel == MARKER:
                continue
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            else:
                with path.open("rb") as handle:
                    found[rel] = hashlib.file_digest(handle, "sha256").hexdigest()
    return found


def _create(env: Path, python: Path | None) -> None:
    """An empty venv at `env` (no pip: Cloned's pip installs into it with `--python`)."""
    ensure_private_dir(env.parent)
    command = [str(python or sys.executable), "-m", "venv", "--without-pip", str(env)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ClonedError(f"{env}: could not create a virtual environment: {last}")


def _install(lock: LockFile, env: Path) -> None:
    """Install exactly the lock's pins, each checked against its hashes, then let pip check
    that every dependency is among them (a lock missing one is refused)."""
    with tempfile.TemporaryDirectory(prefix="cloned-env-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(lock.text())
        python = env / "bin" / "python"
        what = f"installing {env.name}"
        run_pip(["install", *INSTALL_FLAGS, "-r", str(requirements)], python=python, what=what)
    _check_installed(env, lock)
    _check_closure(env)


def _check_installed(env: Path, lock: LockFile) -> None:
    """The distributions in `env` are exactly the lock's: pip settings that send an install
    elsewhere (`target`, `prefix`, `root` in a pip.conf) must not leave an empty environment
    that looks complete."""
    found = set()
    for info in env.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found.add((canonicalize_name(name), str(Version(version))))
    wanted = {(pin.name, str(Version(pin.version))) for pin in lock.pins}
    if found != wanted:
        missing = ", ".join(f"{n}=={v}" for n, v in sorted(wanted - found)) or "none"
        extra = ", ".join(f"{n}=={v}" for n, v in sorted(found - wanted)) or "none"
        raise ClonedError(
            f"{env}: pip did not install exactly the lock (missing: {missing}; not in the "
            f"lock: {extra})",
            hint="check pip's settings for target, prefix, root or user installs",
        )


def _check_closure(env: Path) -> None:
    command = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "check"]
    proc = subprocess.run(
        [*command, *QUIET_FLAGS], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        broken = "; ".join(proc.stdout.strip().splitlines()[:5]) or proc.stderr.strip()[:500]
        raise PackageRefused(
            "invalid-manifest", f"{env.name}: the lock is not a complete closure: {broken}"
        )


def _complete(env: Path, lock: LockFile) -> Env:
    """Write the completion marker, last: from here on the environment may be used."""
    files = hash_tree(env)
    files_digest = canonical_digest(files)
    marker = {
        "format": MARKER_FORMAT,
        "lock_digest": lock.digest,
        "files_digest": files_digest,
        "files": files,
    }
    write_atomic(env / MARKER, canonical_json(marker))
    return Env(env, lock.digest, files_digest)


def _read_marker(env: Path) -> dict[str, Any] | None:
    """The marker when it is well formed and its file list matches its own digest."""
    try:
        marker = parse_json((env / MARKER).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    files = marker.get("files")
    if not isinstance(files, dict) or not isinstance(marker.get("lock_digest"), str):
        return None
    if marker.get("files_digest") != canonical_digest(files):
        return None
    return marker
