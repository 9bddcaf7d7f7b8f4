"""Where the data folders shipped with Cloned live (`schemas/`, `blueprints/`, `trust/`, ...).

In a built wheel they are inside the package (`reconciler/_data/NAME`, see pyproject.toml); in a
source checkout (editable install, tests) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder of shipped data called `name`, in a wheel or in a source checkout."""
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name
