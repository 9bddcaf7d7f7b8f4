"""PyPI connectors from a hash lock, each in its own virtual environment.

`lock` resolves a distribution's closure with pip and pins it by sha256 (`resolve.py`);
`read_lock` checks a committed lock (`lockfile.py`); `build_env` installs exactly a lock into
an environment with hash checking on, `verify_env` re-hashes it (`env.py`). pip is the resolver
and installer (`pip.py`); nothing at install time is resolved that the lock does not name.
"""

from reconciler.packages.pypi.env import Env, build_env, open_env, remove_env, verify_env
from reconciler.packages.pypi.lockfile import LockFile, Pin, read_lock
from reconciler.packages.pypi.resolve import lock

__all__ = [
    "Env",
    "LockFile",
    "Pin",
    "build_env",
    "lock",
    "open_env",
    "read_lock",
    "remove_env",
    "verify_env",
]
