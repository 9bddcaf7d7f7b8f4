"""Entry point and the single error boundary of the `cloned` command (STYLE practice 4).

Expected failures (`ClonedError`, bad flags) print one clear message and exit with the code from
`reconciler.errors.ExitCode`; anything else is a bug, reported briefly with its traceback saved
to a log file whose path is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


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
    sys.stdout = RedactingStream(sys.stdout, redactor)
    sys.stderr = RedactingStream(sys.stderr, redactor)
    try:
        return _dispatch(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _dispatch(argv: Sequence[str]) -> int:
    from typer import Abort
    from typer._click.exceptions import ClickException

    from reconciler.cli.app import app
    from reconciler.cli.output import error_line, report_error
    from reconciler.errors import ClonedError, ExitCode

    try:
        result = app(args=list(argv), prog_name="cloned", standalone_mode=False)
    except ClickException as exc:
        # click exits 2 on a usage error; in Cloned 2 means "changes found", so bad flags are 1.
        exc.show()
        return int(ExitCode.ERROR)
    except Abort:
        error_line("aborted")
        return int(ExitCode.ERROR)
    except ClonedError as exc:
        report_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception:  # noqa: BLE001 - the one boundary for what nothing else expected
        return _crash()
    return result if isinstance(result, int) else int(ExitCode.OK)


def _crash() -> int:
    from reconciler.cli.output import error_line
    from reconciler.errors import write_crash_log

    path = write_crash_log("cloned-crash", sys.argv)
    kind = sys.exc_info()[0]
    name = kind.__name__ if kind else "error"
    error_line(f"internal error ({name}); this is a bug in Cloned. Details: {path}")
    return 1
