"""Running pip, the one resolver and installer of connector environments, and turning what it
says into refusals with a reason.

pip runs from Cloned's own environment (`python -m pip`), and `--python` points it at the
interpreter it resolves for or installs into, so a target environment needs no pip of its own.
pip reads its index settings from its configuration and environment (`PIP_INDEX_URL`,
`PIP_FIND_LINKS`, `PIP_NO_INDEX`, ...) as it always does; Cloned adds none.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from reconciler.errors import ClonedError
from reconciler.inert import text as inert_text
from reconciler.packages.refusal import PackageRefused

PIP_TIMEOUT_SECONDS = 900
QUIET_FLAGS = ("--no-input", "--disable-pip-version-check")
_MISMATCH_HEADER = "DO NOT MATCH THE HASHES"
_MISMATCHED = re.compile(r"^ {4}(?P<pin>\S+==\S+) from ")
_EXPECTED = re.compile(r"^\s+Expected sha256 (?P<hex>[0-9a-f]+)")
_GOT = re.compile(r"^\s+Got\s+(?P<hex>[0-9a-f]+)")
_NOT_FOUND = re.compile(r"No matching distribution found for (?P<what>\S+)")


def run_pip(args: list[str], *, python: Path | None, what: str) -> str:
    """Run `pip [--python PYTHON] ARGS` and return its standard output; a failure is a
    `PackageRefused` (hash mismatch, not found) or a `ClonedError` naming `what` was done."""
    target = ["--python", str(python)] if python is not None else []
    command = [sys.executable, "-m", "pip", *target, *args, *QUIET_FLAGS]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise ClonedError(f"{what}: pip did not finish in {PIP_TIMEOUT_SECONDS} s") from None
    if proc.returncode != 0:
        raise pip_failure(proc.stderr or proc.stdout, what)
    return proc.stdout


def pip_failure(output: str, what: str) -> ClonedError:
    """The error that pip's failing `output` means."""
    if "No module named pip" in output:
        return ClonedError(
            f"{what}: pip is not installed in Cloned's environment ({sys.executable})",
            hint="install pip next to Cloned (python -m ensurepip)",
        )
    if _MISMATCH_HEADER in output:
        return PackageRefused("hash-mismatch", f"{what}: {mismatches(output)}")
    found = _NOT_FOUND.search(output)
    if found is not None:
        return PackageRefused(
            "not-found", f"{what}: no wheel of {found['what']} for this Python on the index"
        )
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
    return ClonedError(f"{what}: pip failed: {inert_text(last[:500])}")


def mismatches(output: str) -> str:
    """`name==version (lock sha256 X, file sha256 Y)` for each distribution pip found whose
    file does not match the lock."""
    found: list[str] = []
    expected = ""
    pin = ""
    for line in output.splitlines():
        if (match := _MISMATCHED.match(line)) is not None:
            pin = match["pin"]
        elif (match := _EXPECTED.match(line)) is not None:
            expected = match["hex"]
        elif (match := _GOT.match(line)) is not None and pin:
            found.append(f"{pin} (lock sha256 {expected[:16]}..., file {match['hex'][:16]}...)")
            pin = ""
    shown = "; ".join(found) if found else "a distribution"
    return f"{shown} does not match the hash in the lock"
