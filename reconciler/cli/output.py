"""Printing for the CLI: errors to stderr, results to stdout, JSON for machines."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.errors import ClonedError, Problem, ValidationFailed, one_line


def error_line(message: str) -> None:
    """One `Error: ...` line on stderr."""
    print(f"Error: {message}", file=sys.stderr)


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
    return one_line(f"{location}: {problem.text(lambda rel: display_path(rel, root))}")


def report_error(exc: ClonedError, root: Path | None = None) -> None:
    """Print an expected failure: every problem, then the summary and hint."""
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            print(problem_line(problem, root), file=sys.stderr)
        error_line(f"{exc.message}; nothing was written")
    else:
        error_line(exc.message)
    if exc.hint:
        print(f"Hint: {exc.hint}", file=sys.stderr)


def print_json(payload: Any) -> None:
    """Stable, indented JSON on stdout."""
    print(json.dumps(payload, indent=2, sort_keys=False))


def problem_json(problem: Problem) -> dict[str, Any]:
    """A problem as `cloned validate --json` reports it."""
    return {
        "file": problem.path,
        "line": problem.line or None,
        "column": problem.col or None,
        "message": problem.text(),
    }
