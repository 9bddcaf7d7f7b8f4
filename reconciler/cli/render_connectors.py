"""How installed connectors and their archives read on a terminal: the `connectors list` and
`archive list` tables, `connectors show`'s sections, and one line per verified connector."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.cli.output import say

if TYPE_CHECKING:
    from reconciler.usecases.apply import AuditCommit
    from reconciler.usecases.archive import ArchiveList, PurgeResult
    from reconciler.usecases.connector_detail import ConnectorDetail
    from reconciler.usecases.connectors import (
        ConnectorList,
        RestoreResult,
        VerifyResult,
    )


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `header`, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def short(digest: str | None) -> str:
    """The first 12 hex digits of a `sha256:` digest (`-` for none)."""
    return digest.removeprefix("sha256:")[:12] if digest else "-"


def table(result: ConnectorList) -> None:
    """`connectors list` for people."""
    if not result.connectors:
        say("No connectors: none is applied or declared.")
        return
    columns(
        ("NAME", "VERSION", "SOURCE", "PUBLISHER", "DIGEST", "STATUS", "VERIFIED AT"),
        [
            (
                row.name,
                row.version,
                row.source_label,
                row.publisher,
                short(row.digest),
                row.status,
                row.verified_at or "-",
            )
            for row in result.connectors
        ],
    )
    if result.applied_from == "lock":
        say("(No state database here: read from .cloned/cloned.lock.)")


def detail(result: ConnectorDetail) -> None:
    """`connectors show NAME` for people: the sections the command's help names."""
    row = result.row
    say(f"connector.{row.name}  {row.status}")
    say(
        f"  applied from  {result.origin}"
        + (f" at {result.applied_at}" if result.applied_at else "")
    )
    say(f"  source        {row.source_label}")
    _spec(result.state.get("spec") or {})
    pinned = result.pinned
    if pinned is not None:
        say("Package")
        say(f"  version       {pinned.version}")
        say(f"  digest        {pinned.digest}")
        signed = f" (signed by role {pinned.role})" if pinned.role else ""
        say(f"  publisher     {pinned.publisher}{signed}")
        if pinned.target is not None:
            say(f"  target        {pinned.target} ({pinned.length} bytes) in {pinned.registry}")
        say(f"  tools         {_listed(pinned.tools)}")
        say(f"  egress hosts  {_listed(pinned.egress_hosts)}")
        say(f"  secrets       {_listed(pinned.secrets)}")
        say(f"  run           {' '.join(pinned.run) or '-'}")
    _install(result)
    folder = result.data_folder
    say(f"Data folder     {folder}" + ("" if folder.is_dir() else " (not there)"))
    isolation = result.isolation
    say(f"Sandbox         profile {isolation.profile}; isolation: {isolation.summary()}")
    _health(result)


SHOWN_ABOVE = ("source", "version", "publisher", "description")


def _spec(spec: Mapping[str, Any]) -> None:
    """The applied spec's settings, one line each (source, version and publisher are above)."""
    say("Spec")
    for key, value in spec.items():
        if key not in SHOWN_ABOVE:
            say(f"  {key:<13} {json.dumps(value, sort_keys=True)}")


def _install(result: ConnectorDetail) -> None:
    record = result.install
    if record is None:
        say("Install         none here (no install record)")
        return
    say("Install")
    if result.store_entry is not None:
        say(f"  store entry   {result.store_entry}")
    if result.environment is not None:
        say(f"  environment   {result.environment}")
    versions = record.record.get("versions")
    if isinstance(versions, dict):
        listed = ", ".join(f"{role} {number}" for role, number in sorted(versions.items()))
        say(f"  TUF metadata  {listed}")
    say(f"  installed at  {record.record.get('installedAt', '-')}")
    state = "ok" if record.verified_ok else "FAILED"
    say(f"  last verified {record.verified_at} ({state})")


def _health(result: ConnectorDetail) -> None:
    health = result.health
    if health is None:
        say("Health          unknown: nothing installed here to verify")
    elif not health.problems:
        say(f"Health          ok: the installed files verify (checked {health.checked_at})")
    else:
        say(f"Health          FAILED (checked {health.checked_at}):")
        for problem in health.problems:
            say(f"  ! {problem}")


def _listed(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def verified(result: VerifyResult) -> None:
    """`connectors verify` for people: one line per connector, then the tally."""
    if not result.checked:
        say("No connectors are applied: nothing to verify.")
        return
    for checked in result.checked:
        if checked.ok:
            say(f"ok      {checked.name}")
        else:
            say(f"FAILED  {checked.name}: {'; '.join(checked.problems)}")
    failed = len(result.failed)
    if failed:
        say(f"{failed} of {len(result.checked)} connectors failed to verify.", err=True)
    commit_line(result.audit_commit)


def restored(result: RestoreResult) -> None:
    """`connectors restore NAME` for people, saying what it does and does not mean."""
    archived = result.archived
    say(f"Restored {archived.name} {archived.version} from archive {archived.id}.")
    if archived.package:
        say(f"  package      back in the store ({archived.install.get('tree')})")
    if archived.data:
        say(f"  data folder  {result.data_folder}")
    if result.applied:
        say(f"Connector {archived.name} is applied: its data is back in place.")
    else:
        declared = (
            "It is declared in .cloned/: `cloned apply` installs it again with this data."
            if result.declared
            else "Declare a Connector of that name again and apply it to install it with this data."
        )
        say(f"Connector {archived.name} is not installed by this. {declared}")
    commit_line(result.audit_commit)


def archives(result: ArchiveList) -> None:
    """`archive list` for people."""
    if not result.archives:
        say("No archives.")
        return
    columns(
        ("ID", "CONNECTOR", "VERSION", "ARCHIVED AT", "KEPT UNTIL", "HOLDS"),
        [
            (
                kept.archived.id,
                kept.archived.name,
                kept.archived.version,
                kept.archived.archived_at,
                kept.to_json()["kept_until"],
                _holds(kept.archived.package, kept.archived.data),
            )
            for kept in result.archives
        ],
    )
    say(f"(The Workspace keeps archives for {result.retention.days} days.)")


def _holds(package: bool, data: bool) -> str:
    held = [what for what, there in (("package", package), ("data", data)) if there]
    return " + ".join(held) if held else "nothing"


def purged(result: PurgeResult) -> None:
    """`archive purge` for people."""
    if not result.removed:
        say("Nothing to purge: no archive is that old.")
        return
    for archived in result.removed:
        say(f"purged  {archived.id}")
    say(f"Purged {len(result.removed)} archives.")
    commit_line(result.audit_commit)


def commit_line(made: AuditCommit | None) -> None:
    """One line on the audit commit: its id, or (on stderr) why there is none."""
    if made is None or made.status in ("unchanged", "disabled"):
        return
    if made.status == "committed" and made.commit is not None:
        say(f"Audit commit {made.commit[:12]}: the audit log.")
        return
    say(
        f"Warning: no audit commit: {made.reason}. The audit files stay in .cloned/; the next "
        "apply commits them.",
        err=True,
    )
