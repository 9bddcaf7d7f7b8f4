"""Entry point and the single error boundary of the `cloned` command (STYLE practice 4).

Expected failures (`ClonedError`, bad flags) print one clear message and exit with the code from
`reconciler.errors.ExitCode`; anything else is a bug, reported briefly with its traceback saved
to a log file whose path is printed. When the command line asks for JSON (`--json`, or
`--format json`), every failure caught here also prints one JSON object on stdout,
`{"error", "exit_code", "problems"}` (specs/exit-codes.md), so a script reading stdout always
gets JSON; stderr keeps the lines for people.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typer._click.core import Command
    from typer._click.exceptions import ClickException

    from reconciler.errors import Problem


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


def run(argv: Sequence[str]) -> int:
    """Run one command line and return its exit code; never raises for user mistakes."""
    from reconciler.redact import RedactingStream, start_command

    # One redactor on every terminal path: whatever a session registers (policy patterns,
    # secrets read at run time) is masked in all that is printed afterwards.
    redactor = start_command()
    streams = sys.stdout, sys.stderr
    out, err = RedactingStream(sys.stdout, redactor), RedactingStream(sys.stderr, redactor)
    sys.stdout, sys.stderr = out, err
    try:
        return _dispatch(argv)
    finally:
        # What a stream held back (an unfinished line, a value's possible beginning) is the
        # end of the output now.
        out.release()
        err.release()
        sys.stdout, sys.stderr = streams


def _dispatch(argv: Sequence[str]) -> int:
    from typer import Abort
    from typer._click.exceptions import ClickException

    from reconciler.cli.output import error_line, report_error
    from reconciler.errors import ClonedError, ExitCode, ValidationFailed

    wants_json = asks_for_json(argv)
    try:
        result = _command()(args=list(argv), prog_name="cloned", standalone_mode=False)
    except ClickException as exc:
        # click exits 2 on a usage error; in Cloned 2 means "changes found", so bad flags are 1.
        _show_click(exc)
        return _failed(wants_json, exc.format_message(), int(ExitCode.ERROR))
    except Abort:
        error_line("aborted")
        return _failed(wants_json, "aborted", int(ExitCode.ERROR))
    except ClonedError as exc:
        report_error(exc)
        problems = exc.problems if isinstance(exc, ValidationFailed) else []
        return _failed(wants_json, exc.message, int(exc.exit_code), problems)
    except KeyboardInterrupt:
        error_line("interrupted")
        return _failed(wants_json, "interrupted", int(ExitCode.INTERRUPTED))
    except Exception:  # noqa: BLE001 - the one boundary for what nothing else expected
        message = _crash()
        return _failed(wants_json, message, int(ExitCode.ERROR))
    return result if isinstance(result, int) else int(ExitCode.OK)


@functools.cache
def _command() -> Command:
    """The click command tree of the app, built once per process."""
    # Calling the typer app rebuilds the tree from every command's signature and type hints
    # (about 25 ms) on each run; a process that dispatches many command lines (the in-process
    # test runner, an embedding caller) pays that once. typer's own excepthook, which calling
    # the app would install, only formats exceptions that escape; none escape this boundary.
    import typer.main

    from reconciler.cli.app import app

    return typer.main.get_command(app)


def asks_for_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output: `--json`, `--format json` (before `--`)."""
    words = list(argv)
    if "--" in words:
        words = words[: words.index("--")]
    for index, word in enumerate(words):
        if word in ("--json", "--format=json"):
            return True
        if word == "--format" and words[index + 1 : index + 2] == ["json"]:
            return True
    return False


def _failed(wants_json: bool, message: str, code: int, problems: Sequence[Problem] = ()) -> int:
    """Exit `code`; with JSON asked for, first say so on stdout as one JSON object."""
    if wants_json:
        from reconciler.cli.output import print_json
        from reconciler.errors import error_json

        print_json(error_json(message, code, problems))
    return code


def _show_click(exc: ClickException) -> None:
    """click's usage message, each of its lines made inert (it quotes the user's arguments)."""
    import io

    from reconciler.cli.output import say

    shown = io.StringIO()
    exc.show(file=shown)
    for line in shown.getvalue().splitlines():
        say(line, err=True)


def _crash() -> str:
    """Save the traceback to a crash log, say where on stderr, and return that message."""
    from reconciler.cli.output import error_line
    from reconciler.errors import write_crash_log

    path = write_crash_log("cloned-crash", sys.argv)
    kind = sys.exc_info()[0]
    name = kind.__name__ if kind else "error"
    message = f"internal error ({name}); this is a bug in Cloned. Details: {path}"
    error_line(message)
    return message
