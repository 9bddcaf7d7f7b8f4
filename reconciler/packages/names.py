"""What a file may be called inside a connector package: one rule for folders, commits and
archives (`tree.py`, `archive.py`), so a name accepted in one place is accepted everywhere and
two names that one file system could confuse never both appear."""

from __future__ import annotations

import unicodedata

from reconciler.packages.refusal import PackageRefused

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024
CACHE_FOLDER = "__pycache__"
COMPILED_SUFFIXES = (".pyc", ".pyo")


def check_name(path: str) -> None:
    """Refuse ("unsafe-entry") a package path that is not a plain relative POSIX path in its
    normal form: absolute, `.`/`..`/empty segments, backslashes, control characters, text that
    is not UTF-8 or not Unicode NFC, or compiled Python (never reviewable)."""
    problem = _name_problem(path)
    if problem is not None:
        raise PackageRefused("unsafe-entry", f"{path!r}: {problem}")


def _name_problem(path: str) -> str | None:
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not UTF-8"
    if not path or len(encoded) > MAX_PATH_BYTES:
        return f"a name must be 1 to {MAX_PATH_BYTES} bytes"
    if path.startswith("/"):
        return "an absolute path"
    if any(ch == "\\" or unicodedata.category(ch) in ("Cc", "Cf") for ch in path):
        return "a backslash or control character in the name"
    if unicodedata.normalize("NFC", path) != path:
        return "the name is not in Unicode normal form (NFC)"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return "an empty, '.' or '..' path segment"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"a path segment longer than {MAX_SEGMENT_BYTES} bytes"
        if segment == CACHE_FOLDER:
            return f"a {CACHE_FOLDER} folder (compiled Python is not part of a package)"
    if path.endswith(COMPILED_SUFFIXES):
        return "compiled Python (not reviewable)"
    return None


def collision_key(path: str) -> str:
    """The form under which two names would land on the same file on some file system
    (case-insensitive ones included)."""
    return unicodedata.normalize("NFC", path).casefold()


class NameSet:
    """The names seen so far in one package: refuses a duplicate, a case-or-form twin, and a
    name that is both a file and a folder."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}
        self._folders: dict[str, str] = {}

    def add(self, path: str) -> None:
        """Record `path` (already checked by `check_name`), refusing any clash."""
        key = collision_key(path)
        if key in self._files:
            raise PackageRefused("unsafe-entry", f"{path!r}: the same name as {self._files[key]!r}")
        if key in self._folders:
            raise PackageRefused("unsafe-entry", f"{path!r}: also a folder in the package")
        parts = key.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in self._files:
                raise PackageRefused(
                    "unsafe-entry", f"{path!r}: {self._files[folder]!r} is a file, not a folder"
                )
            self._folders.setdefault(folder, path)
        self._files[key] = path
