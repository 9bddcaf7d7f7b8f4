"""The one user-facing error tree and the exit codes every command uses (SPEC sections 3, 11).

Library code raises `ClonedError` (or a subclass) for anything a user can fix; the CLI's single
error boundary prints it and exits with its code. Anything else is a bug: the boundary prints a
short message and writes the traceback to a crash log (`write_crash_log`). Adapters convert
their library's errors into these at the call (httpx's way), so nothing above them catches a
third-party exception. Callers that must tell failures apart catch a subclass, never the root
error to mean one thing, and never read a message's wording.

    ClonedError                  expected failure: print the message (and hint), exit 1
    ├── UsageError               a flag or argument is wrong; the message names it
    ├── WorkspaceNotFound        no `.cloned/` folder here or above (or the folder is gone)
    ├── ValidationFailed         the desired state is invalid; carries every Problem
    ├── GitError                 git could not do what Cloned needed
    │   ├── NotAGitRepository    the folder is not inside a git work tree
    │   └── GitFailed            a git command or object read failed (what, and git's words)
    ├── StateUnavailable         the state database cannot be opened, read or trusted
    ├── StalePlan                a saved plan no longer matches the desired or actual state
    ├── PackageRefused           a connector package is not what it claims (packages/refusal.py)
    └── TransientError           may succeed later; `retry_after` seconds is a fair wait
        └── LockHeld             another process holds the workspace lock
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from reconciler.inert import text as inert_text


class ExitCode(IntEnum):
    """Exit codes shared by every command; `specs/exit-codes.md` is the normative list."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    APPROVALS_PENDING = 3
    POLICY_DENIED = 4
    INTERRUPTED = 130  # SIGINT, as shells report it (128 + 2)


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about the user's input, located as precisely as the input allows."""

    path: str
    line: int = 0
    col: int = 0
    message: str = ""
    # Another place the message refers to ("defined twice: here and at FILE:LINE"); it is
    # appended to the message, so that the CLI can show both paths the same way.
    related: tuple[str, int] | None = None

    def location(self) -> str:
        """`path:line:col`, or just `path` when the problem has no position in a file."""
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path

    def text(self, show: Callable[[str], str] = str) -> str:
        """The message, with the related place (if any) shown through `show`, on one line."""
        if self.related is None:
            return inert_text(self.message)
        return inert_text(f"{self.message} {show(self.related[0])}:{self.related[1]}")

    def to_json(self) -> dict[str, object]:
        """The problem as every `--json` output reports it."""
        return {
            "file": self.path,
            "line": self.line or None,
            "column": self.col or None,
            "message": self.text(),
        }

    def render(self) -> str:
        """The one-line form users see: `path:line:col: message`."""
        return inert_text(f"{self.location()}: {self.text()}")


class ClonedError(Exception):
    """An expected failure: print the message (and hint), exit with `exit_code`."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ValidationFailed(ClonedError):
    """Desired state is invalid; carries every problem found in one run."""

    def __init__(self, problems: list[Problem]) -> None:
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")
        self.problems = sorted(problems)


class UsageError(ClonedError):
    """A flag or argument is wrong (the message names it)."""


class WorkspaceNotFound(ClonedError):
    """No `.cloned/` folder at or above the given folder, or that folder does not exist."""


class GitError(ClonedError):
    """Git could not do what Cloned needed."""


class NotAGitRepository(GitError):
    """The folder is not inside a git work tree."""


class GitFailed(GitError):
    """A git command or an object read failed; the message says what Cloned was doing."""


class StateUnavailable(ClonedError):
    """The state database cannot be opened, read or trusted (damaged, newer schema, missing)."""


class StalePlan(ClonedError):
    """The saved plan no longer matches the desired or actual state."""


class TransientError(ClonedError):
    """A failure that may pass by itself: retrying after `retry_after` seconds is reasonable
    (the reconcile loop and the connector runtime back off on these)."""

    def __init__(self, message: str, *, hint: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class LockHeld(TransientError):
    """The workspace is locked by someone else and the wait ran out."""


def error_json(message: str, exit_code: int, problems: Sequence[Problem] = ()) -> dict[str, Any]:
    """What a command asked for JSON prints when it fails (specs/exit-codes.md)."""
    return {
        "error": message,
        "exit_code": exit_code,
        "problems": [problem.to_json() for problem in problems],
    }


def write_crash_log(prefix: str, argv: Sequence[str]) -> str:
    """Write the exception being handled to a new log file, with what a bug report needs (the
    Cloned and Python versions, the platform and argv), redacted, and return the file's path."""
    import platform
    import tempfile
    import traceback

    from reconciler import __version__
    from reconciler.redact import active

    text = (
        f"cloned {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"argv: {list(argv)!r}\n\n{traceback.format_exc()}"
    )
    fd, path = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log")
    with open(fd, "w") as handle:
        handle.write(active().text(text))
    return path
