"""Printing for the CLI: errors to stderr, results to stdout, JSON for machines.

Lines for people go through `say` (or `error_line`), which makes them inert
(reconciler.cli.inert): a name, key, file name or message read from the user's files cannot
move the cursor or hide text. JSON goes through `print_json`, exact.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.cli import inert
from reconciler.errors import ClonedError, Problem, ValidationFailed


def say(line: str = "", *, err: bool = False) -> None:
    """Print one line for people, inert: on stdout, or on stderr with `err`."""
    print(inert.text(line), file=sys.stderr if err else sys.stdout)


def error_line(message: str) -> None:
    """One `Error: ...` line on stderr."""
    say(f"Error: {message}", err=True)


def display_path(rel: str, root: Path) -> str:
    """A repository-relative path shown relative to the current folder, as compilers do."""
    try:
        shown = os.path.relpath(root / rel)
    except ValueError:
        return rel
    return shown


def problem_line(problem: Problem, root: Path | None) -> str:
    """`path:line:col: message`, the path made relative to where the user stands."""
    if root is None:
        return problem.render()
    shown = display_path(problem.path, root)
    location = f"{shown}:{problem.line}:{problem.col}" if problem.line else shown
    return inert.text(f"{location}: {problem.text(lambda rel: display_path(rel, root))}")


def report_error(exc: ClonedError, root: Path | None = None) -> None:
    """Print an expected failure: every problem, then the summary and hint."""
    problems = exc.problems if isinstance(exc, ValidationFailed) else []
    report_failure(exc.message, problems, exc.hint, root)


def report_failure(
    message: str, problems: Sequence[Problem], hint: str | None, root: Path | None
) -> None:
    """A failure on stderr: each problem as `path:line:col: message`, then `Error: ...` (saying
    that nothing was written when the input was at fault) and the hint."""
    for problem in problems:
        say(problem_line(problem, root), err=True)
    error_line(f"{message}; nothing was written" if problems else message)
    if hint:
        say(f"Hint: {hint}", err=True)


def print_json(payload: Any) -> None:
    """Stable, indented JSON on stdout."""
    print(json.dumps(payload, indent=2, sort_keys=False))
