"""The bubblewrap sandbox a stdio connector starts in (specs/sandbox.md).

`isolation()` says whether bubblewrap exists and can create its namespaces on this machine
(probed once per process); `confinement(profile)` turns a connector's `spec.sandbox.profile`
and that answer into what will happen: sandboxed, unsandboxed (and why), or a refusal under
`strict`. `wrap` puts the bwrap command around a connector's command: every namespace of its
own (so its network is loopback only: egress goes through the proxy, `pool`), no
capabilities, a read-only `/`, and empty read-only tmpfs mounts over the user's HOME,
`$CLONED_HOME` and the whole repository, with only what the connector needs bound back: its
store entry and environment read-only, its data folder read-write.

It knows commands and paths, not MCP: the runtime's `Launch` passes through it as any frozen
dataclass with a name, command, folder and environment, so `egress` never imports the
runtime (docs/architecture.md, "Where the sandbox is applied").
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from reconciler.errors import ClonedError

Profile = Literal["none", "standard", "strict"]

BWRAP_ENV = "CLONED_BWRAP"
"""The one setting: the bubblewrap binary to use (default: `bwrap` on PATH)."""

INSTALL = "apt-get install bubblewrap"
INSTALL_HINT = (
    "install bubblewrap: `apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install "
    "bubblewrap` (Fedora); macOS has none, so use profile `standard` there (it runs "
    "unsandboxed and says so)"
)
PROBE_SECONDS = 10.0
TMP = Path("/tmp")  # noqa: S108 (the sandbox's own private tmpfs, not a file made here)


@dataclass(frozen=True)
class Isolation:
    """Whether bubblewrap can isolate a process here, and why not when it cannot."""

    available: bool
    binary: str | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`connectors show --json`, `isolation`)."""
        return {"available": self.available, "binary": self.binary, "reason": self.reason}


def isolation() -> Isolation:
    """Whether bubblewrap works here: probed once per process for each configured binary."""
    return _probe(os.environ.get(BWRAP_ENV) or None, sys.platform)


@functools.cache
def _probe(configured: str | None, platform: str) -> Isolation:
    if not platform.startswith("linux"):
        return Isolation(False, None, f"bubblewrap is Linux only (this is {platform})")
    binary = configured if configured is not None else shutil.which("bwrap")
    if binary is None:
        return Isolation(False, None, f"bubblewrap not found (no bwrap on PATH): {INSTALL}")
    if not os.access(binary, os.X_OK) or not Path(binary).is_file():
        return Isolation(False, binary, f"bubblewrap not found at {binary} ({BWRAP_ENV})")
    probe = [binary, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(
            probe, capture_output=True, timeout=PROBE_SECONDS, env={"PATH": "/usr/bin:/bin"}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Isolation(False, binary, f"bubblewrap could not run: {exc}")
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        why = said[-1] if said else f"exit status {done.returncode}"
        return Isolation(
            False,
            binary,
            f"bubblewrap cannot create its namespaces here ({why}); are user namespaces "
            "turned off (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)?",
        )
    return Isolation(True, binary)


@dataclass(frozen=True)
class Confinement:
    """How one connector will run: its profile and whether the sandbox is on."""

    profile: Profile
    isolation: Isolation

    @property
    def sandboxed(self) -> bool:
        """Whether the connector starts inside bubblewrap."""
        return self.profile != "none" and self.isolation.available

    @property
    def refused(self) -> bool:
        """Whether it will not start at all (`strict` without isolation)."""
        return self.profile == "strict" and not self.isolation.available

    @property
    def reason(self) -> str | None:
        """Why it runs without isolation, or does not start (None when sandboxed)."""
        if self.sandboxed:
            return None
        if self.profile == "none":
            return "sandbox.profile none: an explicit, approved opt-out"
        return self.isolation.reason

    def summary(self) -> str:
        """One line for people: `bubblewrap (...)`, `none (why)` or the refusal."""
        if self.sandboxed:
            return (
                "bubblewrap (own namespaces; network: loopback only, egress only through "
                "the gateway's proxy)"
            )
        if self.refused:
            return f"none: refused to start (strict needs bubblewrap; {self.reason})"
        if self.profile == "none":
            return f"none ({self.reason}; egress not filtered)"
        return f"none ({self.reason}; egress: proxy variables only, not enforced)"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`connectors show --json`, `isolation`)."""
        return {
            "profile": self.profile,
            "sandboxed": self.sandboxed,
            "active": "bubblewrap" if self.sandboxed else "none",
            "refused": self.refused,
            "reason": self.reason,
            "bubblewrap": self.isolation.to_json(),
        }


def expected(profile: Profile) -> Confinement:
    """How a connector with `profile` would run here (never raises: plans and `show`)."""
    return Confinement(profile, isolation())


class SandboxRefused(ClonedError):
    """A `strict` connector cannot start: the isolation it requires is not available here."""


def confinement(profile: Profile, *, name: str) -> Confinement:
    """How connector `name` with `profile` will run; `SandboxRefused` under `strict` when
    bubblewrap cannot isolate it here (never a silent downgrade)."""
    confined = expected(profile)
    if confined.refused:
        raise SandboxRefused(
            f"connector.{name}: sandbox.profile strict needs bubblewrap, and "
            f"{confined.reason}; not started",
            hint=INSTALL_HINT,
        )
    return confined


class Wrappable(Protocol):
    """What `wrap` needs of a launch (the runtime's `Launch` is one)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def command(self) -> tuple[str, ...]: ...

    @property
    def cwd(self) -> Path: ...

    @property
    def env(self) -> Mapping[str, str]: ...


L = TypeVar("L", bound=Wrappable)


def wrap(
    launch: L,
    *,
    profile: Profile,
    name: str,
    root: Path,
    cloned_home: Path,
    user_home: Path | None,
    writable: Iterable[Path],
    readable: Iterable[Path],
) -> L:
    """`launch` with the bwrap command around its own when `profile` and this machine allow
    it, else `launch` itself; `SandboxRefused` under `strict` without bubblewrap."""
    confined = confinement(profile, name=name)
    if not confined.sandboxed:
        return launch
    assert confined.isolation.binary is not None
    argv = bwrap_command(
        confined.isolation.binary,
        launch.command,
        cwd=launch.cwd,
        hidden=[path for path in (user_home, cloned_home, root) if path is not None],
        writable=writable,
        readable=readable,
    )
    return dataclasses.replace(launch, command=argv)


def bwrap_command(
    binary: str,
    command: Iterable[str],
    *,
    cwd: Path,
    hidden: Iterable[Path],
    writable: Iterable[Path],
    readable: Iterable[Path],
) -> tuple[str, ...]:
    """The bwrap argv: namespaces, the read-only root, the hidden trees and what is bound
    back into them, then `command` in `cwd`.

    No environment variable is on it: bwrap passes on its own environment, which the runtime
    sets to exactly the launch's (`runtime.process.spawn`), because a command line is readable
    by every process of the machine (`/proc/PID/cmdline`, `ps`) and the environment only by
    the same user: a secret granted as a variable (`providers.grants`) must never be an
    argument."""
    trees = _outermost(_resolved(hidden))
    covered = [*trees, TMP]  # /tmp is a private tmpfs: what lives there is hidden too
    binds = [("--ro-bind", path) for path in _resolved(readable) if _under(path, covered)]
    binds += [("--bind", path) for path in _resolved(writable, must_exist=False)]
    argv = [
        binary,
        *("--unshare-all", "--unshare-net", "--die-with-parent"),
        # No --new-session: the runtime starts bwrap in a session of its own already (so there
        # is no terminal to inject into), and a second setsid inside would take the server and
        # what it forks out of the process group the supervisor signals and waits on and the
        # reaper kills.
        # Root inside keeps every capability unless dropped, and could then unmount the
        # tmpfs over a hidden tree to see what is under it.
        *("--cap-drop", "ALL"),
        *("--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", str(TMP)),
        # A read-only mount does not stop connect() on a Unix socket: hide the ones in /run
        # (the Docker daemon's, the D-Bus buses, agents under /run/user/UID).
        *("--tmpfs", "/run"),
    ]
    for tree in trees:
        argv += ["--tmpfs", str(tree)]
    for option, path in sorted(binds, key=lambda bind: len(bind[1].parts)):
        argv += [option, str(path), str(path)]
    for tree in trees:  # after the binds, whose mount points bwrap makes inside the tmpfs
        argv += ["--remount-ro", str(tree)]
    argv += ["--chdir", str(cwd)]
    return (*argv, "--", *command)


def _resolved(paths: Iterable[Path], *, must_exist: bool = True) -> list[Path]:
    """Absolute paths with symlinks resolved; those that do not exist are left out (nothing
    there to hide or bind), except where a missing one must fail the start loudly."""
    found = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if real == Path("/") or (must_exist and not real.exists()):
            continue
        found.append(real)
    return found


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths not inside another one, shortest first (a tmpfs over a parent covers all)."""
    ordered = sorted(set(paths), key=lambda path: len(path.parts))
    kept: list[Path] = []
    for path in ordered:
        if not _under(path, kept):
            kept.append(path)
    return kept


def _under(path: Path, trees: Iterable[Path]) -> bool:
    return any(path == tree or tree in path.parents for tree in trees)
