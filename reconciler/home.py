"""`$CLONED_HOME`: per-user files that must never live in a repository (SPEC section 11)."""

from __future__ import annotations

import os
from pathlib import Path


def cloned_home() -> Path:
    """`$CLONED_HOME`, else `$XDG_CONFIG_HOME/cloned`, else `~/.config/cloned`."""
    explicit = os.environ.get("CLONED_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg).expanduser() / "cloned"
    return Path.home() / ".config" / "cloned"


def keys_dir() -> Path:
    """Where `cloned keys generate` writes key pairs."""
    return cloned_home() / "keys"


def registries_dir() -> Path:
    """Where the TUF client keeps what it verified of each registry (per root pin): the
    highest metadata versions seen, which rollback and freeze protection need, so they
    outlive a checkout's `.cloned/state/` and hold across this user's clones."""
    return cloned_home() / "registries"


def gateway_token_path() -> Path:
    """The bearer token `cloned gateway --listen` requires (`gateway/token`, mode 0600)."""
    return cloned_home() / "gateway" / "token"
