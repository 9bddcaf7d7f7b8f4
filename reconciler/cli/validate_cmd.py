"""`cloned validate [PATH] [--json]`: check the desired state and summarise it by kind."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import error_json, print_json, report_error, say
from reconciler.errors import ClonedError, ExitCode, ValidationFailed


def validate(
    path: Path = typer.Argument(
        Path(),
        help="A folder inside the repository (default: the current one); Cloned finds .cloned/ "
        "there or in a folder above.",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object (for CI) instead of text."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Parse and validate every file, ignoring the content cache."
    ),
) -> int:
    """Validate every resource under .cloned/ and summarise them by kind.

    Reports every problem at once as `file:line:col: message` and exits 1; nothing is written.
    On success it prints how many resources of each kind were found. Verdicts are cached by
    file content in .cloned/state/ (git-ignored), so a second run only re-checks what changed.

    Examples:

    \b
      cloned validate                      # the workspace containing the current folder
      cloned validate --json > result.json # one JSON object for CI
      cloned validate ../other-repo
    """
    from reconciler.load.files import find_root
    from reconciler.load.workspace import load_desired_state

    try:
        root = find_root(path)
    except ClonedError as exc:
        if not as_json:
            raise
        print_json({"valid": False, "root": None, **error_json(exc.message, int(ExitCode.ERROR))})
        return int(ExitCode.ERROR)
    try:
        state = load_desired_state(root, use_cache=not no_cache)
    except ValidationFailed as exc:
        if as_json:
            failed = error_json(exc.message, int(ExitCode.ERROR), exc.problems)
            print_json({"valid": False, "root": str(root), **failed})
        else:
            report_error(exc, root)
        return int(ExitCode.ERROR)
    counts = state.counts()
    if as_json:
        print_json(
            {
                "valid": True,
                "root": str(state.root),
                "files": state.files,
                "resources": len(state.resources),
                "kinds": counts,
                "problems": [],
            }
        )
        return int(ExitCode.OK)
    total = len(state.resources)
    say(
        f"Valid: {total} resource{'s' if total != 1 else ''} in {state.files} "
        f"file{'s' if state.files != 1 else ''} ({state.root / '.cloned'})"
    )
    width = max(len(kind) for kind in counts)
    for kind, count in counts.items():
        if count:
            say(f"  {kind:<{width}}  {count:>6}")
    return int(ExitCode.OK)
