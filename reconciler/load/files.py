"""Find the resource files under `.cloned/` and read them defensively.

Reserved folders (`approvals/`, `audit/`, `state/`) and `cloned.lock` are Cloned's own and are
skipped. Symlinks are followed only when they stay inside the repository. Files are size-capped
and must be UTF-8; the problems found here carry the file's path and, where it helps, a line.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import Problem, WorkspaceNotFound

CLONED_DIR = ".cloned"
RESERVED_DIRS = frozenset({"approvals", "audit", "state"})
RESERVED_FILES = frozenset({"cloned.lock"})
YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    """A resource file: its path relative to the repository root, and its bytes."""

    rel: str
    data: bytes


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds `.cloned/` (a `.cloned` path is fine)."""
    if not start.is_absolute() and not _cwd_exists():
        raise WorkspaceNotFound(
            "the current folder no longer exists", hint="cd into the repository"
        )
    try:
        start = start.resolve(strict=True)
    except OSError:
        raise WorkspaceNotFound(f"{start}: no such file or folder") from None
    if start.name == CLONED_DIR and start.is_dir():
        return start.parent
    for folder in (start, *start.parents):
        if (folder / CLONED_DIR).is_dir():
            return folder
    raise WorkspaceNotFound(
        f"no {CLONED_DIR}/ folder in {start} or any folder above it",
        hint="run `cloned init` to create a workspace",
    )


def _cwd_exists() -> bool:
    try:
        os.getcwd()
    except OSError:
        return False
    return True


def discover(root: Path) -> tuple[list[SourceFile], list[Problem]]:
    """Every YAML file under `root/.cloned/`, read, in a stable order; plus problems found."""
    files: list[SourceFile] = []
    problems: list[Problem] = []
    real_root = os.path.realpath(root)
    seen_dirs: set[str] = set()

    def visit(folder: str, top: bool) -> None:
        real = os.path.realpath(folder)
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        try:
            with os.scandir(folder) as entries:
                ordered = sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            problems.append(_unreadable(os.path.relpath(folder, root), exc))
            return
        for entry in ordered:
            if entry.name.startswith(".") or (top and entry.name in RESERVED_FILES):
                continue
            try:
                visit_entry(entry, top)
            except OSError as exc:  # a symlink loop (ELOOP), a file gone meanwhile, EACCES
                # A loop may be meant as a folder whatever its name, so it is always reported.
                if exc.errno == errno.ELOOP or entry.name.endswith(YAML_SUFFIXES):
                    problems.append(_unreadable(os.path.relpath(entry.path, root), exc))

    def visit_entry(entry: os.DirEntry[str], top: bool) -> None:
        rel = os.path.relpath(entry.path, root)
        if entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_root):
            if entry.is_dir() or entry.name.endswith(YAML_SUFFIXES):
                target = os.readlink(entry.path)
                problems.append(
                    Problem(rel, 1, 1, f"symlink points outside the repository ({target})")
                )
            return
        if entry.is_dir():
            if not (top and entry.name in RESERVED_DIRS):
                visit(entry.path, top=False)
        elif entry.name.endswith(YAML_SUFFIXES):
            if not entry.is_file():
                problems.append(
                    Problem(rel, 1, 1, "not a regular file (a broken symlink, a pipe or a device)")
                )
                return
            read = _read(entry.path, rel)
            if isinstance(read, Problem):
                problems.append(read)
            else:
                files.append(read)

    visit(os.path.join(root, CLONED_DIR), top=True)
    return files, problems


def committed_sources(
    files: list[tuple[str, bytes]], unreadable: list[tuple[str, str]]
) -> tuple[list[SourceFile], list[Problem]]:
    """The resource files among files read from git (paths relative to the root), chosen by the
    same rules as `discover`: YAML, no dot-names, not Cloned's reserved files, size-capped."""
    chosen = [SourceFile(rel, data) for rel, data in files if is_resource_path(rel)]
    problems = [Problem(rel, 1, 1, reason) for rel, reason in unreadable if is_resource_path(rel)]
    for source in chosen:
        if len(source.data) > MAX_FILE_BYTES:
            problems.append(
                Problem(
                    source.rel,
                    1,
                    1,
                    f"file is {len(source.data):,} bytes; resource files are limited to "
                    f"{MAX_FILE_BYTES:,}",
                )
            )
    return [s for s in chosen if len(s.data) <= MAX_FILE_BYTES], problems


def is_resource_path(rel: str) -> bool:
    """Whether a path (relative to the root, `/`-separated) is where `discover` looks."""
    parts = rel.split("/")
    if len(parts) < 2 or parts[0] != CLONED_DIR or not parts[-1].endswith(YAML_SUFFIXES):
        return False
    inner = parts[1:]
    if any(part.startswith(".") for part in inner):
        return False
    if len(inner) == 1:
        return inner[0] not in RESERVED_FILES
    return inner[0] not in RESERVED_DIRS


def _unreadable(rel: str, exc: OSError) -> Problem:
    if exc.errno == errno.ELOOP:
        return Problem(rel, 1, 1, "symlink loop: too many levels of symbolic links")
    return Problem(rel, 1, 1, f"cannot read: {exc.strerror or exc}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _read(path: str, rel: str) -> SourceFile | Problem:
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            return Problem(
                rel,
                1,
                1,
                f"file is {size:,} bytes; resource files are limited to {MAX_FILE_BYTES:,}",
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Problem(rel, 1, 1, f"cannot read the file: {exc.strerror or exc}")
    if len(data) > MAX_FILE_BYTES:  # grew while we looked
        return Problem(rel, 1, 1, f"file is larger than {MAX_FILE_BYTES:,} bytes")
    return SourceFile(rel=rel, data=data)


def decode(source: SourceFile) -> str | Problem:
    """The file's text (UTF-8, an optional BOM dropped), or a problem at the first bad byte."""
    try:
        text = source.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = source.data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        return Problem(
            source.rel, line, col, f"file is not UTF-8 (byte 0x{source.data[exc.start]:02x})"
        )
    return text.removeprefix("\ufeff")
