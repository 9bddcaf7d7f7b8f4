"""`cloned connectors ...`: `list`, `show NAME`, `verify [NAME...]` and `restore NAME` (the
installed connectors), `tools NAME`, `call NAME TOOL` and `stats` (their pinned tools, one
governed call, the calls' statistics), `lock NAME` (the hash lock of a pypi Connector's
environment) and `pack SRC` (a reproducible archive of a connector folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli import render_connectors, render_tools
from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="Connectors: list, show, verify and restore installed connectors; their pinned tools, "
    "a governed call and call statistics; lock their PyPI dependencies; pack connector folders.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


PATH = typer.Option(Path("."), "--path", help="A folder inside the repository.")
JSON = typer.Option(False, "--json", help="Print one JSON object.")


@app.command("list")
def list_(path: Path = PATH, as_json: bool = JSON) -> int:
    """List every Connector: version, source, publisher, digest, status, when verified.

    Reads the state database (in a checkout without one, .cloned/cloned.lock, where the status
    is `not installed here`) and never re-hashes, so it is fast. The status is `enabled` or
    `disabled`; `damaged` when the last `cloned connectors verify` found a difference; `not
    installed` when the install record is missing; `not applied` for a Connector declared in
    .cloned/ but not applied yet (left out, with a note on stderr, when the desired state does
    not validate).

    Example:

    \b
      cloned connectors list
      NAME   VERSION  SOURCE         PUBLISHER  DIGEST        STATUS   VERIFIED AT
      clock  1.0.0    registry demo  demo       c234ec5d2059  enabled  2026-12-01T10:00:00Z
    """
    from reconciler.usecases.connectors import list_connectors

    result = list_connectors(path=path)
    if result.desired_problem is not None:
        say(
            f"Note: Connectors declared but not applied are not listed: {result.desired_problem}",
            err=True,
        )
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.table(result)
    return int(result.exit_code)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The Connector's metadata.name."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Show everything about one applied Connector, and whether its files verify now.

    The applied spec; the pinned package (source, version, digest, publisher and the registry
    role that signed it, the registry target and length, the tools, egress hosts and secrets
    it declares, its run command); the install record (store entry, environment, TUF metadata
    versions, installed at); its data folder; the isolation it starts with here (its
    `sandbox.profile`, and whether bubblewrap can isolate it on this machine, or why not); and
    health: its installed files re-hashed now against the install record (nothing is
    recorded; `cloned connectors verify` records).

    Example:

    \b
      cloned connectors show clock --json | jq .health
    """
    from reconciler.usecases.connector_detail import show as run

    result = run(path=path, name=name)
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.detail(result)
    return int(result.exit_code)


@app.command("tools")
def tools(
    name: str = typer.Argument(..., help="The Connector's metadata.name."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Show an applied Connector's pinned tools and what the gateway does with each.

    Read from the applied state and the last tool listing seen (never the YAML; the connector
    is not started). Each tool's gateway name (CONNECTOR__TOOL), title and pin digest, and its
    status: `served`; `denied (RULE)` by the connector's tools.allow/deny or a pack's
    tools.deny; `needs approval per call (PATTERN)` by tools.requireApproval; `drifted
    (changed|removed|new)` when the last listing of the same package differs from the pin (the
    call is refused until a plan re-pins it); `flagged` when the pin was flagged (control
    characters, invisible text, instructions aimed at the model: printed in full); `not
    served` when the connector is disabled or not installed.

    JSON (stable): {connector, enabled, installed, pinned, set, listing: {observed_at,
    observed_by} | null, tools: [{name, public, title, digest, pinned, status, rule, drift,
    flags}]}; status is served | denied | needs-approval | drifted | flagged | disabled.

    Example:

    \b
      cloned connectors tools notes
      TOOL        GATEWAY NAME       TITLE        PIN           STATUS
      add_note    notes__add_note    Add a note   9aa593c004af  served
      list_notes  notes__list_notes  List notes   166beb8f4b01  denied (connector.notes tools.deny)
    """
    from reconciler.usecases.connector_tools import tools as run

    result = run(path=path, name=name)
    if as_json:
        print_json(result.to_json())
    else:
        render_tools.tools(result)
    return int(result.exit_code)


@app.command("call")
def call(
    name: str = typer.Argument(..., help="The Connector's metadata.name."),
    tool: str = typer.Argument(..., help="The tool's name (as pinned, without the prefix)."),
    args: str = typer.Option(
        "{}", "--args", help="The arguments: a JSON object, or @FILE holding one."
    ),
    wait: float = typer.Option(
        0.0, "--wait", help="Seconds to wait for a per-call approval before answering."
    ),
    path: Path = PATH,
    as_json: bool = typer.Option(False, "--json", help="Print the call's outcome as JSON."),
) -> int:
    """Make one tool call through the governed call path, as the gateway would.

    The same checks as a gateway call, in the same order (allowed, pinned, the live listing
    agrees, arguments valid, per-call approval, budgets and rate limits, concurrency, timeout),
    then the result, capped and redacted, and one `tool.called` audit event (via "cli"). The
    connector is started for the call and stopped after it. Prints the result's text, or its
    structured content as JSON. A refusal prints the reason and the rule.

    Exit codes: 0 the tool answered; 1 refused, failed, or the tool answered with an error;
    3 the call needs a per-call approval (its request id is printed: approve it, then run the
    same call again). `--json` prints {decision, content, structuredContent, isError, rule,
    reason, request, latency_ms, args_digest, result_bytes}.

    Example:

    \b
      cloned connectors call notes read_note --args '{"name": "ideas"}'
      cloned connectors call notes add_note --args @note.json --wait 300
    """
    from reconciler.usecases.connector_call import call as run

    result = run(path=path, name=name, tool=tool, args=args, wait=wait)
    if as_json:
        print_json(result.to_json())
    else:
        render_tools.call(result)
    return int(result.exit_code)


@app.command("stats")
def stats(
    since: str = typer.Option(
        None, "--since", help="Only calls in the last DURATION (30m, 12h, 7d, 2w)."
    ),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Show calls, errors, refusals and latency per connector and tool, and the breakers.

    Counted from the audit log's `tool.called` events (gateway, `connectors call` and
    pipeline calls alike). Latency percentiles (p50, p95, p99, nearest rank, in ms) are of
    the calls that were made (allowed or failed), not of refusals. Each connector's circuit
    breaker and process are those a running `cloned gateway` last wrote to
    .cloned/state/runtime/status.json (every few seconds and on every change); without one
    running, stats says so.

    JSON: {since, gateway: {pid, written_at} | null, connectors: [{name, breaker, process,
    status}], tools: [{connector, tool, calls, errors, refusals, approvals, latency_ms: {p50,
    p95, p99}}]}.

    Example:

    \b
      cloned connectors stats --since 1d --json | jq '.tools[] | select(.errors > 0)'
    """
    from reconciler.usecases.connector_stats import stats as run

    result = run(path=path, since=since)
    if as_json:
        print_json(result.to_json())
    else:
        render_tools.stats(result)
    return int(result.exit_code)


@app.command("verify")
def verify(
    names: list[str] = typer.Argument(None, help="Connector names (default: every one)."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Re-hash installed connectors against their install records.

    Every file of each connector's store entry (and of its environment, if it has one) is
    hashed again and compared with what was recorded at install. The result is recorded
    (`verified at` in `cloned connectors list`; a failure shows as `damaged`), and a failure
    is audited as a `connectors.verified` event. Takes the workspace lock.

    Exit codes: 0 every connector verified; 1 a difference, or a connector not installed.

    Example:

    \b
      cloned connectors verify
      ok      clock
      FAILED  notes: changed: server.py
    """
    from reconciler.usecases.connectors import verify as run

    result = run(path=path, names=tuple(names or ()))
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.verified(result)
    return int(result.exit_code)


@app.command("restore")
def restore(
    name: str = typer.Argument(..., help="The deleted Connector's metadata.name."),
    path: Path = PATH,
    as_json: bool = JSON,
) -> int:
    """Bring back the newest archive of a deleted connector.

    Deleting a Connector archives its installed package and data folder (`cloned archive
    list`). Restore puts the package back into the store and the data folder back in place,
    and removes the archive; it is audited (`connector.restored`). The connector is not
    installed by this: it is installed again, with its data, once a Connector of that name is
    declared again and applied. Takes the workspace lock.

    Example:

    \b
      cloned connectors restore notes
    """
    from reconciler.usecases.connectors import restore as run

    result = run(path=path, name=name)
    if as_json:
        print_json(result.to_json())
    else:
        render_connectors.restored(result)
    return int(result.exit_code)


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
