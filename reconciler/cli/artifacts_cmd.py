"""`cloned artifacts list|show|verify`: the outputs of runs and their signed provenance."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.cli.output import error_line, print_json, say

app = typer.Typer(
    help="Artifacts: the outputs runs produced, content-addressed, with signed provenance.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PATH_HELP = "A folder inside the repository (default: the current one)."


@app.command("list")
def list_(
    run: str | None = typer.Option(None, "--run", metavar="ID", help="Only this run's artifacts."),
    path: Path = typer.Option(Path("."), "--path", help=PATH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """List the artifacts runs published, newest first.

    Each line: the run id, the artifact's name, its digest (sha256 of its bytes, the name of
    its file under .cloned/state/artifacts/sha256/), its size and media type.

    Examples:

    \b
      cloned artifacts list
      cloned artifacts list --run 7f3c9a --json | jq -r '.artifacts[].digest'
    """
    from reconciler.usecases.artifacts import list_artifacts

    result = list_artifacts(path=path, run=run)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if not result.artifacts:
        say(f"Run {run} has no artifacts." if run else "No artifacts yet.")
    for row in result.artifacts:
        say(f"{row.run_id}  {row.name}  {row.digest}  {row.size} B  {row.media_type}")
    return int(result.exit_code)


@app.command("show")
def show(
    ref: str = typer.Argument(
        ..., metavar="NAME|DIGEST", help="An artifact's name, or its digest (8 hex digits or more)."
    ),
    run: str | None = typer.Option(
        None, "--run", metavar="ID", help="The run, when several have an artifact of that name."
    ),
    path: Path = typer.Option(Path("."), "--path", help=PATH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print its metadata as one JSON object."),
) -> int:
    """Print an artifact's content (or, with --json, its metadata).

    The file is re-hashed first: bytes that no longer match the digest they are stored by are
    refused (exit 1). Piped, the content is printed exactly; on a terminal, control characters
    are shown escaped.

    Examples:

    \b
      cloned artifacts show report
      cloned artifacts show report --run 7f3c9a > report.md
      cloned artifacts show sha256:045d2d07 --json
    """
    from reconciler.usecases.artifacts import show as run_show

    result = run_show(path=path, ref=ref, run=run)
    if as_json:
        print_json(result.to_json())
    elif not result.is_text:
        say(f"{result.artifact.name} is {result.artifact.media_type}; see it with --json")
    elif sys.stdout.isatty():
        for line in result.content.decode("utf-8").splitlines():
            say(line)
    else:
        sys.stdout.write(result.content.decode("utf-8"))
        sys.stdout.flush()
    return int(result.exit_code)


@app.command("verify")
def verify(
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run whose artifacts to check."),
    path: Path = typer.Option(Path("."), "--path", help=PATH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Verify a run's artifacts and signed provenance.

    Checks that every artifact file re-hashes to its recorded digest, that the run's DSSE
    envelope (.cloned/state/artifacts/runs/RUN_ID.intoto.jsonl) is signed by the workspace's
    pinned audit key, and that its in-toto statement names exactly the recorded artifacts.
    Exits 0 when everything verifies, 1 naming the first failure.

    Examples:

    \b
      cloned artifacts verify 7f3c9a
      cloned artifacts verify 7f3c9a --json | jq .failure
    """
    from reconciler.usecases.artifacts import verify as run_verify

    result = run_verify(path=path, run_id=run_id)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    for check in result.verification.checks:
        say(f"{'ok' if check.ok else 'FAILED'}  {check.name}: {check.detail}")
    failure = result.verification.failure
    if failure is not None:
        error_line(f"run {run_id} does not verify: {failure.name}: {failure.detail}")
    return int(result.exit_code)
