"""`cloned gateway token [--rotate]` and the flags of `cloned gateway`: the token's file and
modes, and every bad --listen refused as a one-line usage error before anything starts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import cloned


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_is_made_once_private_and_rotated(hermetic_env: Path) -> None:
    first = cloned("gateway", "token")
    assert first.code == 0, first.err
    token = first.out.strip()
    assert len(token) >= 43 and "\n" not in token and "=" not in token
    path = hermetic_env / "gateway" / "token"
    assert path.read_text().strip() == token
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert first.err == ""
    again = cloned("gateway", "token", "--json")
    assert json.loads(again.out) == {"token": token, "path": str(path), "rotated": False}
    rotated = cloned("gateway", "token", "--rotate")
    assert rotated.code == 0
    assert rotated.out.strip() not in ("", token)
    assert cloned("gateway", "token").out == rotated.out
    assert mode(path) == 0o600


def test_a_token_others_can_read_is_refused(hermetic_env: Path) -> None:
    assert cloned("gateway", "token").code == 0
    path = hermetic_env / "gateway" / "token"
    path.chmod(0o644)
    refused = cloned("gateway", "token")
    assert refused.code == 1
    assert "not a private file" in refused.err and refused.out == ""
    assert cloned("gateway", "token", "--rotate").code == 0
    assert mode(path) == 0o600


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        ("8080", "is not HOST:PORT"),
        ("127.0.0.1", "is not HOST:PORT"),
        ("127.0.0.1:http", "is not HOST:PORT"),
        ("127.0.0.1:99999", "out of range"),
        ("0.0.0.0:8080", "not a loopback address"),
        ("192.168.0.2:8080", "not a loopback address"),
        ("example.com:8080", "not a loopback address"),
        ("[::]:8080", "not a loopback address"),
    ],
)
def test_a_bad_listen_address_is_a_usage_error(workspace: Path, listen: str, says: str) -> None:
    result = cloned("gateway", "--listen", listen, cwd=workspace)
    assert result.code == 1
    assert "--listen" in result.err and says in result.err
    assert "Traceback" not in result.err and result.out == ""


def test_the_gateway_refuses_a_workspace_never_applied(workspace: Path) -> None:
    result = cloned("gateway", "--listen", "127.0.0.1:0", cwd=workspace)
    assert result.code == 1
    assert "apply" in result.err and "Traceback" not in result.err
