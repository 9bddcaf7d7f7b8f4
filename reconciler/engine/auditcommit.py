"""The audit commit: after an apply, one git commit holding the new audit segments, the signed
checkpoints and `cloned.lock`, and nothing else (SPEC section 3).

It commits whatever of those files differs from HEAD, so events a failed commit left behind are
committed by the next run; the user's other staged or unstaged changes are never swept in
(see `gitrepo.commit_paths`). The Workspace as applied says whether to commit and as whom.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from reconciler import gitrepo
from reconciler.audit.files import AUDIT_DIR, CHECKPOINTS_FILE, SEGMENTS_DIR
from reconciler.engine import actual as actual_state
from reconciler.engine.outcome import STATUS_WORDS, Outcome, count, describe_counts
from reconciler.errors import GitError
from reconciler.load.typed import applied_model
from reconciler.redact import Redactor
from reconciler.state import resources as rows
from reconciler.state.db import StateDB

PATHS = (AUDIT_DIR.as_posix(), actual_state.LOCK_FILE.as_posix())
GUARD = gitrepo.Guard(
    immutable=(SEGMENTS_DIR.as_posix(),), append_only=(CHECKPOINTS_FILE.as_posix(),)
)
"""Committed segments never change or go; the committed checkpoints only grow."""
EXCLUDE = (f"{AUDIT_DIR.as_posix()}/**/.*",)
"""Dot-named files under `.cloned/audit/` (an older Cloned's temporaries) are never committed."""
MAX_LISTED = 50
SOURCE = "the applied state (state database)"

Status = Literal["committed", "unchanged", "disabled", "skipped", "failed"]


@dataclass(frozen=True)
class AuditCommit:
    """What the audit commit did: `commit` when made, `reason` when skipped or failed."""

    status: Status
    commit: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {"status": self.status, "commit": self.commit, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> AuditCommit:
        """What `to_json` wrote (the reconcile status file); ValueError otherwise."""
        if not isinstance(data, dict) or data.get("status") not in get_args(Status):
            raise ValueError("an audit commit needs a known status")
        commit, reason = data.get("commit"), data.get("reason", "")
        if not (commit is None or isinstance(commit, str)) or not isinstance(reason, str):
            raise ValueError("an audit commit's commit and reason are strings")
        return cls(cast(Status, data["status"]), commit, reason)


@dataclass(frozen=True)
class Settings:
    """The applied Workspace's `spec.git`."""

    enabled: bool
    author: gitrepo.Author | None


def settings(db: StateDB) -> Settings:
    """Audit-commit settings from the applied Workspace (on, as git's author, when none)."""
    workspaces = rows.of_kind(db, "Workspace")
    if not workspaces:
        return Settings(True, None)
    row = workspaces[0]
    state = json.loads(row.state)
    git = applied_model("Workspace", row.name, state, source=SOURCE).spec.git
    author = git.author
    return Settings(
        git.audit_commits, gitrepo.Author(author.name, author.email) if author else None
    )


def commit(
    root: Path,
    db: StateDB,
    plan_id: str,
    outcomes: Sequence[Outcome],
    *,
    desired_commit: str,
    redactor: Redactor,
) -> AuditCommit:
    """Make the audit commit for this apply, or say why not. Never raises for git's sake: a
    failed commit loses nothing, since the files stay for the next run to commit."""
    return commit_message(root, db, _message(plan_id, outcomes, desired_commit), redactor=redactor)


def commit_message(root: Path, db: StateDB, message: str, *, redactor: Redactor) -> AuditCommit:
    """Commit the audit files and `cloned.lock` with `message` (redacted), as the applied
    Workspace says, or say why not; for commands other than apply that record events
    (`connectors restore`, `archive purge`). Never raises for git's sake."""
    chosen = settings(db)
    if not chosen.enabled:
        return AuditCommit("disabled", reason="the Workspace sets git.auditCommits: false")
    if gitrepo.toplevel(root) is None:
        return AuditCommit("skipped", reason="the workspace is not in a git repository")
    if gitrepo.head(root).commit is None:
        # An audit commit records which commit's desired state was applied; before the first
        # commit there is none, and a first commit holding only Cloned's files would mislead.
        return AuditCommit("skipped", reason="the branch has no commit yet; commit .cloned/ first")
    message = redactor.text(message)
    try:
        made = gitrepo.commit_paths(
            root, PATHS, message, chosen.author, guard=GUARD, exclude=EXCLUDE
        )
    except GitError as exc:
        return AuditCommit("failed", reason=exc.message)
    if made is None:
        return AuditCommit("unchanged")
    return AuditCommit("committed", commit=made)


def check_history(root: Path) -> None:
    """Refuse, before anything is applied, a repository the audit commit could not be made in
    (its git folder not writable), and a checkout whose committed audit files were deleted or
    rewritten: this apply's audit commit would have to rewrite the audit history."""
    if gitrepo.toplevel(root) is None:
        return
    git_dir = gitrepo.git_dir(root)
    if not os.access(git_dir, os.W_OK | os.X_OK):
        raise GitError(
            f"{git_dir}: not writable, so the audit commit could not be made; nothing was applied",
            hint="run apply as a user who may commit to this repository, or with --no-commit",
        )
    refused = gitrepo.rewrites(root, GUARD)
    if refused:
        raise GitError(
            f"committed audit files differ in this checkout ({'; '.join(map(_past, refused))}"
            "); the audit commit never rewrites committed audit history, so nothing was applied",
            hint="restore them with `git checkout HEAD -- .cloned/audit`",
        )


def _past(rewrite: str) -> str:
    verb, _, rest = rewrite.partition(" ")
    return {"deletes": "deleted", "rewrites": "rewritten"}[verb] + ": " + rest


def _message(plan_id: str, outcomes: Sequence[Outcome], desired_commit: str) -> str:
    """`cloned: apply 1a2b3c4d5e6f: 2 applied, 1 awaiting approval`, each change, trailers."""
    short = plan_id.removeprefix("sha256:")[:12]
    tally = describe_counts(count(outcomes)) or "no changes"
    lines = [f"cloned: apply {short}: {tally}", ""]
    for outcome in outcomes[:MAX_LISTED]:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        lines.append(
            f"- {outcome.address}: {outcome.action} {STATUS_WORDS[outcome.status]}{detail}"
        )
    if len(outcomes) > MAX_LISTED:
        lines.append(f"- ...and {len(outcomes) - MAX_LISTED} more (see the audit log)")
    if outcomes:
        lines.append("")
    lines.append(f"Cloned-Plan: {plan_id}")
    lines.append(f"Cloned-Desired: {desired_commit}")
    return "\n".join(lines) + "\n"
