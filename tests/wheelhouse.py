"""The local wheelhouse the pypi tests install from (`make wheelhouse` fills it from
tests/wheelhouse.txt), and the pip settings that point pip at it and at nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

WHEELHOUSE = Path(__file__).resolve().parent.parent / ".wheelhouse"
TIME_PACKAGE = "mcp-server-time"
TIME_VERSION = "2026.10.19"
FETCH_PACKAGE = "mcp-server-fetch"
FETCH_VERSION = "2026.10.24"


def pip_settings(scratch: Path) -> dict[str, str]:
    """pip's own settings for a hermetic run: no index, no config files, no cache; the
    wheelhouse as the only place distributions come from. Fails when it was not filled.

    pip asks `rustc --version` for its user agent; where rustc is a rustup proxy, that writes
    `$RUSTUP_HOME/settings.toml`, so RUSTUP_HOME points into `scratch`, not `$HOME`."""
    if not (WHEELHOUSE / ".stamp").is_file():
        pytest.fail(f"{WHEELHOUSE} is not filled: run `make wheelhouse` (make test does)")
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "RUSTUP_HOME": str(scratch / "rustup"),
    }


def wheel(prefix: str) -> Path:
    """The one wheel in the wheelhouse whose file name starts with `prefix`."""
    found = sorted(WHEELHOUSE.glob(f"{prefix}-*.whl"))
    assert len(found) == 1, found
    return found[0]
