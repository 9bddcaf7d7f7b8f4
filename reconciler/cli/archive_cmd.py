"""`cloned archive list` and `cloned archive purge --older-than D`: the archives deleted
connectors leave behind (their package and data), kept for the Workspace's retention."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli import render_connectors
from reconciler.cli.output import print_json

app = typer.Typer(
    help="Archives of deleted connectors: list them, purge old ones.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def list_(
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """List the archives of deleted connectors, oldest first.

    Deleting a Connector moves its installed package and its data folder into an archive
    under .cloned/state/archive/ instead of removing them. Each archive is kept at least for
    the applied Workspace's `spec.archive.retentionDays` (default 7): `kept until` says when
    `cloned archive purge` may remove it. `cloned connectors restore NAME` brings the newest
    archive of NAME back.

    Example:

    \b
      cloned archive list --json | jq -r '.archives[].id'
    """
    from reconciler.usecases.archive import list_archives

    result = list_archives(path=path)
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.archives(result)
    return int(result.exit_code)


@app.command("purge")
def purge(
    older_than: str = typer.Option(
        ..., "--older-than", help="Remove archives older than this: 30d, 2w or 36h."
    ),
    path: Path = typer.Option(Path("."), "--path", help="A folder inside the repository."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Remove the archives older than D, for good.

    Refused, removing nothing, when D is shorter than the applied Workspace's
    `spec.archive.retentionDays` (default 7): an archive is always kept that long. Purging is
    audited (an `archive.purged` event naming each archive removed) and takes the workspace
    lock.

    Example:

    \b
      cloned archive purge --older-than 30d
    """
    from reconciler.usecases.archive import purge as run

    result = run(path=path, older_than=older_than)
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.purged(result)
    return int(result.exit_code)
