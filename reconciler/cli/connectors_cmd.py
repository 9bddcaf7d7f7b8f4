"""`cloned connectors ...`: `lock NAME` (the hash lock of a pypi Connector's environment) and
`pack SRC` (a reproducible archive of a connector folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="Connectors: lock their PyPI dependencies, pack connector folders.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("lock")
def lock(
    name: str = typer.Argument(..., help="The Connector's metadata.name."),
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Resolve a pypi Connector's dependencies and write its hash lock.

    pip resolves `package==spec.version` and its whole dependency closure for the Python
    running Cloned (wheels only), and every distribution is pinned with its sha256 in the file
    that `source.pypi.lock` names (relative to .cloned/). Install then uses exactly that file,
    with hash checking on. pip's own settings (pip.conf, PIP_INDEX_URL, PIP_FIND_LINKS) say
    where distributions come from. Commit the lock file.

    Example:

    \b
      cloned connectors lock time
      Locked time: mcp-server-time==2026.10.19 and 30 more in .cloned/locks/time.txt
    """
    from reconciler.usecases.lockfiles import lock_connector

    result = lock_connector(path=path, name=name)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    others = len(result.lock.pins) - 1
    state = "" if result.changed else " (unchanged)"
    say(
        f"Locked {result.connector}: {result.package}=={result.version} and {others} more "
        f"in {result.file}{state}"
    )
    return int(result.exit_code)


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
