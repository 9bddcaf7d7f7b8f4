"""The hash lock: a pip requirements file that pins every distribution of a connector's
environment by version and sha256, and nothing else (specs/pypi-lock.md).

`cloned connectors lock` writes one (`resolve.lock`); install reads the committed one back
through `read_lock`, which refuses anything pip could use to fetch or build something the lock
does not name: options, URLs, includes, editables, ranges, markers, extras.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from reconciler.canonical import digest as canonical_digest
from reconciler.errors import Problem, ValidationFailed

MAX_LOCK_BYTES = 1024 * 1024
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.!+_-]+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<hex>[0-9a-f]{64})$")


@dataclass(frozen=True, order=True)
class Pin:
    """One locked distribution: its normalised name, exact version and allowed sha256s."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        """The requirements-file line pip reads."""
        return " ".join(
            [f"{self.name}=={self.version}", *(f"--hash=sha256:{h}" for h in self.hashes)]
        )


@dataclass(frozen=True)
class LockFile:
    """A connector environment's hash lock: the pins, and the header saying what made it."""

    pins: tuple[Pin, ...]
    header: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """`sha256:<hex>` of the pins alone: two locks that install the same files are equal."""
        return canonical_digest([[p.name, p.version, list(p.hashes)] for p in self.pins])

    def text(self) -> str:
        """The requirements file: header comments, then one sorted pin per line."""
        comments = [f"# {line}" if line else "#" for line in self.header]
        return "\n".join([*comments, *(pin.line() for pin in self.pins)]) + "\n"

    def get(self, package: str) -> Pin | None:
        """The pin of `package` (any spelling of its name), if locked."""
        wanted = canonicalize_name(package)
        return next((pin for pin in self.pins if pin.name == wanted), None)


def make_lock(pins: list[Pin], header: tuple[str, ...]) -> LockFile:
    """A lock of `pins`, sorted by name with each pin's hashes sorted."""
    ordered = sorted(Pin(p.name, p.version, tuple(sorted(set(p.hashes)))) for p in pins)
    return LockFile(tuple(ordered), header)


def read_lock(
    data: bytes, where: str, *, package: str | None = None, version: str | None = None
) -> LockFile:
    """The lock in `data` (read from `where`); `ValidationFailed` naming `where:line` for
    every line that is not `name==version --hash=sha256:...`, and when `package` is given,
    unless it is locked at exactly `version`."""
    if len(data) > MAX_LOCK_BYTES:
        raise ValidationFailed([Problem(where, 0, 0, f"larger than {MAX_LOCK_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([Problem(where, 0, 0, f"not UTF-8 text ({exc.reason})")]) from None
    pins: list[Pin] = []
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for number, line in _logical_lines(text):
        try:
            pin = _parse_line(line)
        except ValueError as exc:
            problems.append(Problem(where, number, 1, str(exc)))
            continue
        if pin.name in seen:
            problems.append(
                Problem(where, number, 1, f"{pin.name} locked twice (line {seen[pin.name]})")
            )
            continue
        seen[pin.name] = number
        pins.append(pin)
    if not problems and package is not None:
        problems.extend(_missing(pins, seen, where, package, version))
    if problems:
        raise ValidationFailed(problems)
    header = tuple(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    return make_lock(pins, header)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, content) of each requirement, with `\\` continuations joined and
    comments and blank lines dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending:
            start = number
        if line.startswith("#") and not pending:
            continue
        if " #" in line:
            line = line.split(" #", 1)[0].rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        if joined:
            yield start, joined
    if pending:
        yield start, " ".join(pending)


def _parse_line(line: str) -> Pin:
    """One requirement as a pin; ValueError saying what pip could do with it that a lock
    must not allow."""
    words = line.split()
    first = words[0]
    if first.startswith("-"):
        option = first.split("=", 1)[0]
        raise ValueError(f"option {option} is not allowed in a lock: only name==version and hashes")
    if "://" in first or first.startswith(("/", ".", "file:")) or "@" in first:
        raise ValueError(f"{first!r}: URLs and paths are not allowed, only name==version")
    if ";" in line:
        raise ValueError("environment markers are not allowed: a lock is made for one Python")
    if "[" in first:
        raise ValueError(f"{first!r}: extras are not allowed, lock each distribution by name")
    match = _PIN.match(first)
    if match is None:
        raise ValueError(f"{first!r} is not pinned: write name==version")
    name, version = _checked_pin(match["name"], match["version"])
    hashes = [_hash(word) for word in words[1:]]
    if not hashes:
        raise ValueError(f"{name}=={version} has no --hash=sha256:...")
    return Pin(name, version, tuple(hashes))


def _checked_pin(name: str, version: str) -> tuple[str, str]:
    try:
        canonical = canonicalize_name(name, validate=True)
        Version(version)
    except (InvalidName, InvalidVersion) as exc:
        raise ValueError(str(exc)) from None
    return canonical, version


def _hash(word: str) -> str:
    match = _HASH.match(word)
    if match is None:
        shown = word if len(word) <= 80 else word[:77] + "..."
        raise ValueError(f"{shown!r}: only --hash=sha256:<64 hex digits> may follow a pin")
    return match["hex"]


def _missing(
    pins: list[Pin], lines: dict[str, int], where: str, package: str, version: str | None
) -> list[Problem]:
    """Why the lock does not install `package` at `version`, if it does not."""
    wanted = canonicalize_name(package)
    pin = next((p for p in pins if p.name == wanted), None)
    if pin is None:
        return [Problem(where, 0, 0, f"{package} is not in the lock (run cloned connectors lock)")]
    if version is not None and Version(pin.version) != Version(version):
        line = f"locks {package}=={pin.version}, but the Connector's spec.version is {version}"
        return [Problem(where, lines[pin.name], 1, f"{line} (run cloned connectors lock)")]
    return []


RESERVED_FIRST = frozenset({"approvals", "audit", "state"})


def lock_location(cloned_dir: Path, rel: str, *, file: str, line: int) -> Path:
    """The file a Connector's `source.pypi.lock` names, inside `cloned_dir` (`.cloned/`);
    `ValidationFailed` at `file:line` (the Connector) for a path that leaves it, or that
    Cloned owns or would read as a resource file."""
    parts = PurePosixPath(rel).parts
    reason = None
    if rel.startswith("/") or "\\" in rel or any(p in ("..", ".") for p in rel.split("/")):
        reason = "must be a relative path inside .cloned/ without '.' or '..' segments"
    elif parts[0] in RESERVED_FIRST or rel == "cloned.lock":
        reason = f"names {parts[0]}, which Cloned owns; put locks under e.g. locks/"
    elif rel.endswith((".yaml", ".yml")):
        reason = "must not end in .yaml or .yml (those are resource files)"
    target = cloned_dir / rel
    if reason is None and not target.resolve().is_relative_to(cloned_dir.resolve()):
        reason = "leaves .cloned/ through a symbolic link"
    if reason is not None:
        raise ValidationFailed([Problem(file, line, 1, f"source.pypi.lock {rel!r} {reason}")])
    return target
