"""The one user-facing error tree and the exit codes every command uses (SPEC sections 3, 11).

Library code raises `ClonedError` (or a subclass) for anything a user can fix; the CLI's single
error boundary prints it and exits with its code. Anything else is a bug: the boundary prints a
short message and writes the traceback to a log file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every command; `specs/exit-codes.md` is the normative list."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    APPROVALS_PENDING = 3
    POLICY_DENIED = 4


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
            return one_line(self.message)
        return one_line(f"{self.message} {show(self.related[0])}:{self.related[1]}")

    def render(self) -> str:
        """The one-line form users see: `path:line:col: message`."""
        return one_line(f"{self.location()}: {self.text()}")


_LINE_BREAKS: dict[int, str] = {
    code: f"\\u{code:04x}" for code in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)
}
_LINE_BREAKS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text: str) -> str:
    """`text` with line breaks and control characters escaped (`\\n`, `\\u2028`): a message
    quoting a multi-line value stays one `path:line:col: message` line."""
    return text.translate(_LINE_BREAKS)


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
