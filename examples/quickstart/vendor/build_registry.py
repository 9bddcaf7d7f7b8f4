"""Rebuild the quickstart's demo registry (`vendor/registry/`) with Cloned's own commands.

    python examples/quickstart/vendor/build_registry.py

DEMO ONLY. The keys in `vendor/demo-keys/` are committed on purpose so that the quickstart
and `make demo` work offline; anyone can sign with them, so never trust this registry outside
the quickstart. Its metadata is valid for ten years for the same reason (a real registry
re-signs its timestamp every day: `cloned registry timestamp`). Prints the root pin to put in
`.cloned/registry.yaml` (the Registry resource's `root`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent
KEYS = VENDOR / "demo-keys"
REGISTRY = VENDOR / "registry"
ROLES = ("demo-root", "demo-targets", "demo-online", "demo-publisher")
TEN_YEARS = "3650d"
ROLES_EXPIRING = ("root", "targets", "snapshot", "timestamp")


def cloned(*args: str, home: Path) -> str:
    """Run the `cloned` next to this Python with CLONED_HOME at `home`; stop on failure."""
    command = [str(Path(sys.executable).parent / "cloned"), *args]
    env = {**os.environ, "CLONED_HOME": str(home)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"`cloned {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout


def keys(home: Path) -> None:
    """The demo keys: made once and committed; copied into CLONED_HOME as ssh would want."""
    KEYS.mkdir(exist_ok=True)
    folder = home / "keys"
    for name in ROLES:
        if not (KEYS / name).exists():
            cloned("keys", "generate", name, home=home)
            shutil.copy(folder / name, KEYS / name)
            shutil.copy(folder / f"{name}.pub", KEYS / f"{name}.pub")
        else:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy(KEYS / name, folder / name)
            shutil.copy(KEYS / f"{name}.pub", folder / f"{name}.pub")
        (folder / name).chmod(0o600)


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        keys(home)
        if REGISTRY.exists():
            shutil.rmtree(REGISTRY)
        expiries = [f"--{role}-expires={TEN_YEARS}" for role in ROLES_EXPIRING]
        # delegate and publish re-sign targets, snapshot and timestamp: ten years for them too
        later = expiries[1:]
        out = cloned(
            "registry",
            "init",
            str(REGISTRY),
            "--root-key",
            "demo-root",
            "--targets-key",
            "demo-targets",
            "--online-key",
            "demo-online",
            *expiries,
            home=home,
        )
        cloned(
            "registry",
            "delegate",
            str(REGISTRY),
            "--name",
            "demo",
            "--publisher-key",
            "demo-publisher",
            "--targets-key",
            "demo-targets",
            "--online-key",
            "demo-online",
            *later,
            home=home,
        )
        archive = Path(scratch) / "clock-1.0.0.tar.gz"
        cloned(
            "connectors", "pack", str(VENDOR / "src" / "clock"), "--out", str(archive), home=home
        )
        cloned(
            "registry",
            "publish",
            str(REGISTRY),
            str(archive),
            "--key",
            "demo-publisher",
            "--online-key",
            "demo-online",
            *later,
            home=home,
        )
    print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
