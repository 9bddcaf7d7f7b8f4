"""`cloned approvals list|show|approve|deny|verify`: review and sign gated changes.

Each command calls one function of `reconciler.usecases.approvals` and renders its result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say

if TYPE_CHECKING:
    from reconciler.usecases.approvals import SignedVerdict

app = typer.Typer(
    help="Review and sign the approval requests that gated changes open.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PATH_OPTION = typer.Option(Path("."), "--path", help="A folder inside the repository.")
BASE_OPTION = typer.Option(
    None,
    "--base",
    metavar="REF",
    help="Review a branch: the change from `cloned plan --base REF` (HEAD's commit against "
    "REF's cloned.lock), approvers from REF.",
)


@app.command("list")
def list_(
    path: Path = PATH_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    all_: bool = typer.Option(False, "--all", help="Include superseded and approved requests."),
) -> int:
    """List approval requests and what each still needs."""
    from reconciler.usecases.approvals import list_requests

    result = list_requests(path=path, include_all=all_)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if not result.shown:
        say("No open approval requests.")
        return int(result.exit_code)
    for item in result.shown:
        needs = "; ".join(item.missing)
        request = item.request
        say(f"{request.id}  {item.status:<10} {request.address} ({request.action})  {needs}")
    return int(result.exit_code)


@app.command("show")
def show(
    request_id: str = typer.Argument(..., help="The request id (a unique prefix is enough)."),
    path: Path = PATH_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> int:
    """Show one request: the change, the rules that gate it, and every verdict so far."""
    from reconciler.cli.diffview import diff_lines
    from reconciler.usecases.approvals import show_request

    result = show_request(path=path, request_id=request_id)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    item = result.item
    request = item.request
    say(f"Request {request.id}: {request.action} {request.address} ({item.status})")
    say(f"  change {request.change_hash}")
    say(f"  declared at {request.origin}, risk {request.risk}")
    say(f"  opened by {request.author} at {request.created_at}")  # who ran apply, not the author
    for rule in request.rules:
        needs = rule.requirement.describe() if rule.requirement else ""
        say(f"  rule {rule.id}: {needs}")
    for line in diff_lines({"diff": request.diff}):
        say(f"    {line}")
    for verdict in item.evaluation.verdicts if item.evaluation else ():
        state = "counts" if verdict.reason is None else f"does not count: {verdict.reason.text}"
        record = verdict.record
        say(f"  {record.verdict} by {record.approver} at {record.signed_at}: {state}")
        if record.comment:
            say(f"    comment: {record.comment}")
    if item.missing:
        say(f"  still needed: {'; '.join(item.missing)}")
    return int(result.exit_code)


def _signed(result: SignedVerdict) -> int:
    """What a signer reads: what was signed, where it counts not, what to do next."""
    record = result.record
    word = "Approved" if record.verdict == "approve" else "Denied"
    say(f"{word} {record.address} (request {record.request_id}) as {record.approver}.")
    for note in result.notes:
        say(f"Note: it does not count everywhere: {note.text}.")
    then = "push it" if result.base is not None else "run cloned apply"
    say(f"Wrote {result.path}; commit it, then {then}.")
    return int(result.exit_code)


@app.command("approve")
def approve(
    request_id: str = typer.Argument(..., help="The request id (a unique prefix is enough)."),
    key: str = typer.Option(..., "--key", help="Your key: a NAME in $CLONED_HOME/keys or a path."),
    comment: str = typer.Option("", "--comment", help="Why you approve (kept in the record)."),
    ttl_days: float = typer.Option(7.0, "--ttl-days", help="Days the approval stays valid."),
    path: Path = PATH_OPTION,
    base: str = BASE_OPTION,
) -> int:
    """Sign an approval of exactly this change and write it under .cloned/approvals/.

    Where the state database lives, ID is a request that apply opened. In a clone without it
    (reviewing a pull request), or with --base REF, ID is a gated change's request id as
    `cloned plan [--base REF]` shows it; apply later opens that same request.

    Examples:

    \b
      cloned approvals approve 8d80d6e71c2d --key alice
      cloned approvals approve 8d80d6e71c2d --key alice --base origin/main
    """
    from reconciler.usecases.approvals import approve as run

    return _signed(
        run(
            path=path,
            request_id=request_id,
            key=key,
            comment=comment,
            ttl_days=ttl_days,
            base=base,
        )
    )


@app.command("deny")
def deny(
    request_id: str = typer.Argument(..., help="The request id (a unique prefix is enough)."),
    key: str = typer.Option(..., "--key", help="Your key: a NAME in $CLONED_HOME/keys or a path."),
    comment: str = typer.Option("", "--comment", help="Why you deny (kept in the record)."),
    path: Path = PATH_OPTION,
    base: str = BASE_OPTION,
) -> int:
    """Sign a denial: the change stays blocked until it changes (or the denial is removed)."""
    from reconciler.usecases.approvals import deny as run

    return _signed(run(path=path, request_id=request_id, key=key, comment=comment, base=base))


@app.command("verify")
def verify(
    path: Path = PATH_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    base: str = typer.Option(
        None,
        "--base",
        metavar="REF",
        help="Check a branch (CI): the records HEAD's commit adds, approvers from REF's "
        "cloned.lock, and whether every gated change of the branch is approved.",
    ),
) -> int:
    """Check every record under .cloned/approvals/: signature, approver, group, expiry, change.

    Approvers and groups are taken from the applied Workspace, so records signed by a key that
    the change under review adds itself never count. Exit 1 when any record is invalid.

    With --base REF (a pull request's CI), the approvers are those of the cloned.lock committed
    at REF, the records checked are those HEAD's commit adds or changes, and each gated change
    of `cloned plan --base REF` is reported approved or still waiting. Records of a change that
    has changed since are stale: reported, not counted, not an error. Exit 1 for an invalid
    record, 4 when a change is denied or forbidden, 3 when one still needs approval, else 0.

    Examples:

    \b
      cloned approvals verify
      cloned approvals verify --base origin/main
    """
    from reconciler.usecases.approvals import verify as run

    result = run(path=path, base=base)
    if result.uncommitted:
        say(
            f"Note: {len(result.uncommitted)} approval record(s) are not committed, so --base "
            f"does not see them (it reads HEAD's commit), e.g. {result.uncommitted[0]}; commit "
            "them first.",
            err=True,
        )
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    for finding in result.invalid + result.lapsed:
        say(f"{finding.path}: {finding.problem.message}")
    lapsed = "expired or stale" if result.base is not None else "expired"
    say(
        f"Approval records: {result.sound} valid, {len(result.lapsed)} {lapsed}, "
        f"{len(result.invalid)} invalid; approvers from {result.trust_source}."
    )
    for gate in result.gates or ():
        names = ", ".join(gate.approved_by)
        by = f" by {names}" if gate.status == "approved" else f" (approved by {names})"
        by = by if gate.approved_by else ""
        needs = f"; needs {'; '.join(gate.missing)}" if gate.missing else ""
        say(f"  {gate.address} [request {gate.request}]: {gate.status}{by}{needs}")
    for address in result.forbidden or ():
        say(f"  {address}: forbidden by policy")
    return int(result.exit_code)
