"""`cloned approvals list|show|approve|deny|verify`: review and sign gated changes."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say

if TYPE_CHECKING:
    from reconciler.engine.review import Listed
from reconciler.errors import ExitCode, UsageError

MAX_TTL_DAYS = 365
"""The longest an approval may stay valid: a year."""

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


def _root(path: Path) -> Path:
    from reconciler.load.files import find_root

    return find_root(path)


@app.command("list")
def list_(
    path: Path = PATH_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    all_: bool = typer.Option(False, "--all", help="Include superseded and approved requests."),
) -> int:
    """List approval requests and what each still needs."""
    from reconciler.engine.review import list_requests

    listed = list_requests(_root(path))
    # Hidden without --all: what is settled (superseded, or approved and applied). A request
    # whose records approve it but that no apply has used yet is shown, as approved.
    shown = [
        item
        for item in listed
        if all_ or as_json or item.request.status not in ("superseded", "approved")
    ]
    if as_json:
        print_json([_json(item) for item in shown])
        return int(ExitCode.OK)
    if not shown:
        say("No open approval requests.")
        return int(ExitCode.OK)
    for item in shown:
        needs = "; ".join(item.missing)
        request = item.request
        say(f"{request.id}  {item.status:<10} {request.address} ({request.action})  {needs}")
    return int(ExitCode.OK)


def _json(item: Listed) -> dict[str, object]:
    request = item.request
    verdicts = item.evaluation.verdicts if item.evaluation else ()
    return {
        "id": request.id,
        "address": request.address,
        "action": request.action,
        "change_hash": request.change_hash,
        "status": item.status,
        "rule": request.rules[0].id if request.rules else None,
        "rules": [rule.to_json() for rule in request.rules],
        "author": request.author,
        "created_at": request.created_at,
        "superseded_by": request.superseded_by,
        "missing": list(item.missing),
        "approvals": [
            {
                "approver": v.record.approver,
                "verdict": v.record.verdict,
                "signed_at": v.record.signed_at,
                "expires_at": v.record.expires_at,
                "counts": v.counts,
                "reason": v.reason,
                "file": v.path,
            }
            for v in verdicts
        ],
    }


@app.command("show")
def show(
    request_id: str = typer.Argument(..., help="The request id (a unique prefix is enough)."),
    path: Path = PATH_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> int:
    """Show one request: the change, the rules that gate it, and every verdict so far."""
    from reconciler.cli.render_plan import diff_lines
    from reconciler.engine.review import list_requests
    from reconciler.errors import ClonedError

    listed = list_requests(_root(path))
    matches = [item for item in listed if item.request.id.startswith(request_id)]
    if len(matches) != 1:
        raise ClonedError(
            f'no approval request "{request_id}"' if not matches else f'"{request_id}" is ambiguous'
        )
    item = matches[0]
    data = _json(item)
    if as_json:
        print_json(data)
        return int(ExitCode.OK)
    request = item.request
    say(f"Request {request.id}: {request.action} {request.address} ({item.status})")
    say(f"  change {request.change_hash}")
    say(f"  declared at {request.change.get('origin')}, risk {request.change.get('risk')}")
    say(f"  author {request.author}, opened {request.created_at}")
    for rule in request.rules:
        needs = rule.requirement.describe() if rule.requirement else ""
        say(f"  rule {rule.id}: {needs}")
    for line in diff_lines({"diff": request.change.get("diff", [])}):
        say(f"    {line}")
    for verdict in item.evaluation.verdicts if item.evaluation else ():
        state = "counts" if verdict.counts else f"does not count: {verdict.reason}"
        record = verdict.record
        say(f"  {record.verdict} by {record.approver} at {record.signed_at}: {state}")
        if record.comment:
            say(f"    comment: {record.comment}")
    if item.missing:
        say(f"  still needed: {'; '.join(item.missing)}")
    return int(ExitCode.OK)


def _sign(
    request_id: str,
    key: str,
    verdict: str,
    comment: str,
    ttl_days: float,
    path: Path,
    base: str | None,
) -> int:
    from reconciler.engine.review import sign

    if not math.isfinite(ttl_days) or not 0 < ttl_days <= MAX_TTL_DAYS:
        raise UsageError(
            f"--ttl-days: must be a number of days, more than 0 and at most {MAX_TTL_DAYS}"
        )
    signed = sign(
        _root(path),
        request_id=request_id,
        key=key,
        verdict="approve" if verdict == "approve" else "deny",
        comment=comment,
        ttl=timedelta(days=ttl_days),
        base=base,
    )
    record = signed.record
    word = "Approved" if verdict == "approve" else "Denied"
    say(f"{word} {record.address} (request {record.request_id}) as {record.approver}.")
    for note in signed.notes:
        say(f"Note: it does not count everywhere: {note}.")
    then = "push it" if base is not None else "run cloned apply"
    say(f"Wrote {signed.path}; commit it, then {then}.")
    return int(ExitCode.OK)


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
    return _sign(request_id, key, "approve", comment, ttl_days, path, base)


@app.command("deny")
def deny(
    request_id: str = typer.Argument(..., help="The request id (a unique prefix is enough)."),
    key: str = typer.Option(..., "--key", help="Your key: a NAME in $CLONED_HOME/keys or a path."),
    comment: str = typer.Option("", "--comment", help="Why you deny (kept in the record)."),
    path: Path = PATH_OPTION,
    base: str = BASE_OPTION,
) -> int:
    """Sign a denial: the change stays blocked until it changes (or the denial is removed)."""
    return _sign(request_id, key, "deny", comment, 7.0, path, base)


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
    from reconciler.engine.review import verify as run_verify

    root = _root(path)
    result = run_verify(root, base=base)
    if base is not None:
        from reconciler.engine.revision import uncommitted_records

        waiting = uncommitted_records(root)
        if waiting:
            say(
                f"Note: {len(waiting)} approval record(s) are not committed, so --base does not "
                f"see them (it reads HEAD's commit), e.g. {waiting[0]}; commit them first.",
                err=True,
            )
    if as_json:
        payload: dict[str, object] = {
            "valid": not result.invalid,
            "sound": result.sound,
            "expired": [p.to_json() for p in result.lapsed],
            "problems": [p.to_json() for p in result.invalid],
        }
        if result.gates is not None:
            payload["changes"] = [
                {
                    "address": g.address,
                    "request": g.request,
                    "status": g.status,
                    "approved_by": list(g.approved_by),
                    "missing": list(g.missing),
                }
                for g in result.gates
            ]
            payload["forbidden"] = result.forbidden or []
        payload["exit_code"] = int(result.exit_code)
        print_json(payload)
        return int(result.exit_code)
    for problem in result.invalid + result.lapsed:
        say(f"{problem.path}: {problem.message}")
    lapsed = "expired or stale" if base is not None else "expired"
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
