"""`cloned validate [PATH] [--json]`: check the desired state and summarise it by kind."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import print_json, report_failure, say


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
    from reconciler.usecases.validate import validate as run

    result = run(path=path, use_cache=not no_cache)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if result.error is not None:
        report_failure(result.error, result.problems, result.hint, result.root)
        return int(result.exit_code)
    total = result.resources
    say(
        f"Valid: {total} resource{'s' if total != 1 else ''} in {result.files} "
        f"file{'s' if result.files != 1 else ''} ({result.root}/.cloned)"
    )
    width = max(len(kind) for kind in result.kinds)
    for kind, count in result.kinds.items():
        if count:
            say(f"  {kind:<{width}}  {count:>6}")
    return int(result.exit_code)
