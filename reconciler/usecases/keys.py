"""`keys generate` and `keys list`: the approver key pairs in `$CLONED_HOME/keys`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ExitCode
from reconciler.keys import KeyInfo

__all__ = ["Generated", "KeyInfo", "KeyList", "generate", "key_json", "list_keys"]


def key_json(key: KeyInfo) -> dict[str, Any]:
    """One key pair as `cloned keys list --json` prints it."""
    return {
        "name": key.name,
        "public_key": key.public_key,
        "fingerprint": key.fingerprint,
        "has_private_key": key.private_path is not None,
    }


@dataclass(frozen=True)
class Generated:
    """The key pair just created; its `public_key` line goes under a Workspace's approvers."""

    key: KeyInfo

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return key_json(self.key)


@dataclass(frozen=True)
class KeyList:
    """Every key pair in `folder`, by name."""

    folder: Path
    keys: tuple[KeyInfo, ...]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> list[dict[str, Any]]:
        return [key_json(key) for key in self.keys]


def generate(*, name: str) -> Generated:
    """Create key pair `name` (the private half mode 0600); a bad or taken name is a
    `ClonedError`."""
    from reconciler import keys

    return Generated(keys.generate(name))


def list_keys() -> KeyList:
    """The key pairs in `$CLONED_HOME/keys`, with their fingerprints."""
    from reconciler import keys
    from reconciler.home import keys_dir

    return KeyList(keys_dir(), tuple(keys.list_keys()))
