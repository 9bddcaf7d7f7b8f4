"""`cloned connectors ...`: connector packages (`pack` today)."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="Work with connector packages.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("pack")
def pack(
    src: Path = typer.Argument(..., help="The connector folder; it holds connector.yaml."),
    out: Path = typer.Option(..., "--out", help="The archive file to write (.tar.gz)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> int:
    """Write a reproducible archive of connector folder SRC to FILE.

    The same folder content always gives the same bytes (sorted members, fixed times, owners
    and modes; specs/package-format.md), so the printed digest identifies the package. An
    invalid connector.yaml is reported with file:line:col and nothing is written.

    Example:

    \b
      cloned connectors pack connectors/notes --out notes-0.1.0.tar.gz
    """
    from reconciler.usecases.packages import pack as run

    result = run(src=src, out=out)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    say(f"Packed {result.name} {result.version} (publisher {result.publisher}) to {result.archive}")
    say(f"  digest  {result.digest}")
    say(f"  size    {result.size:,} bytes, {result.files} files")
    return int(result.exit_code)
