"""Who authored a change, for rules with `excludeAuthor`: the approver who signed the commit.

The author of a change is the signer of the commit that introduced it: walking back from the
commit planned, the newest commit that touches the resource's file and after which the resource
is as planned, while before it it was not. The commit must carry an SSH signature (git's
`gpg.format=ssh`) that `ssh-keygen` verifies against the applied Workspace's approvers (an
allowed-signers list Cloned derives from them); the approver whose key signed it is the author.
Anything else (an unsigned commit, a key that is no approver's, an uncommitted edit, a change
older than the walk reaches) leaves the author unknown, and a rule with `excludeAuthor` then
cannot be met: it cannot tell whose approval to refuse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler import gitrepo, keys
from reconciler.approvals.validity import NOT_NEEDED, Approver, Authorship
from reconciler.engine import revision as revisions
from reconciler.errors import ClonedError
from reconciler.load.files import CLONED_DIR, is_resource_path
from reconciler.plan.types import Change, RuleRef

MAX_WALK = 200
"""Commits that touch the resource's file to look through before giving up."""


def needed(rules: tuple[RuleRef, ...]) -> bool:
    """Whether any of the rules excludes the change's author."""
    return any(rule.requirement is not None and rule.requirement.exclude_author for rule in rules)


def allowed_signers(approvers: dict[str, Approver]) -> str:
    """The `gpg.ssh.allowedSignersFile` text for these approvers: `NAME namespaces="git" KEY`."""
    return "".join(
        f'{a.name} namespaces="git" {keys.material(a.public_key)}\n'
        for a in sorted(approvers.values(), key=lambda a: a.name)
    )


def author_of(
    root: Path,
    approvers: dict[str, Approver],
    *,
    address: str,
    file: str | None,
    current: str | None,
    head: str | None,
    working_tree: bool,
) -> Authorship:
    """The approver who signed the commit that made `address` what it is at `head`.

    `file` is the resource's file relative to the root (None when unknown, e.g. for a delete:
    then every resource file is searched); `current` the digest of its state as planned (None:
    it is deleted). With `working_tree`, the plan is of the working tree, so an uncommitted
    edit of the file means the change is in no commit yet."""
    if head is None:
        return Authorship.not_known("there is no commit yet, so no signed commit made the change")
    paths = [file] if file is not None else [CLONED_DIR]
    try:
        if working_tree:
            dirty = [rel for rel in gitrepo.changed_paths(root, paths) if is_resource_path(rel)]
            if dirty:
                return Authorship.not_known(
                    f"the change is not committed ({dirty[0]} differs from HEAD), so no signed "
                    "commit made it"
                )
        commit = _introduced_by(root, head, address, file, current)
        if commit is None:
            return Authorship.not_known(
                f"no commit among the last {MAX_WALK} that touch {file or CLONED_DIR} made the "
                "change"
            )
        if shutil.which("ssh-keygen") is None:
            return Authorship.not_known(
                f"commit {gitrepo.short(commit)}'s signature cannot be checked: ssh-keygen "
                "(openssh-client) is not installed"
            )
        signature = gitrepo.commit_signature(root, commit, allowed_signers(approvers))
    except ClonedError as exc:
        return Authorship.not_known(exc.message)
    approver = approvers.get(signature.signer)
    if (
        signature.status != "G"
        or approver is None
        or keys.fingerprint(approver.public_key) != signature.key
    ):
        return Authorship.not_known(f"commit {gitrepo.short(commit)} is not signed by an approver")
    return Authorship.of(approver.name)


def _introduced_by(
    root: Path, head: str, address: str, file: str | None, current: str | None
) -> str | None:
    """The newest commit (from `head`, touching `file`) after which `address` has the digest
    `current` and before which it had another (or did not exist)."""
    scope = [file] if file is not None else [CLONED_DIR]
    for commit in gitrepo.commits_touching(root, head, scope, limit=MAX_WALK):
        rels = [file] if file is not None else _resource_files(root, commit)
        after = revisions.digests_at(root, revisions.Revision(commit, commit), rels)
        if after is None or after.get(address) != current:
            continue
        parent = gitrepo.parent_of(root, commit)
        before = (
            revisions.digests_at(root, revisions.Revision(parent, parent), rels)
            if parent is not None
            else {}
        )
        if before is None or before.get(address) != current:
            return commit
    return None


def _resource_files(root: Path, commit: str) -> list[str]:
    return [rel for rel in gitrepo.changed_in(root, commit, CLONED_DIR) if is_resource_path(rel)]


def origin_file(origin: str) -> str | None:
    """The resource file of a `file:line` origin (None for `state`, `cloned.lock`, ...)."""
    file, sep, line = origin.rpartition(":")
    return file if sep and line.isdigit() and is_resource_path(file) else None


def for_change(
    root: Path,
    approvers: dict[str, Approver],
    change: Change,
    *,
    applied_origin: str | None,
    head: str | None,
    working_tree: bool,
) -> Authorship:
    """The author of a planned change (nothing is looked up unless a rule excludes it).
    `applied_origin` is where the applied resource came from, for a delete."""
    if not needed(change.decision.requirements):
        return NOT_NEEDED
    if change.action == "delete":
        file = origin_file(applied_origin or "")
        current = None
    else:
        file = origin_file(change.proposed.origin)
        current = change.after_digest
    return author_of(
        root,
        approvers,
        address=change.address,
        file=file,
        current=current,
        head=head,
        working_tree=working_tree,
    )


def for_request(
    root: Path,
    approvers: dict[str, Approver],
    *,
    address: str,
    action: str,
    origin: str,
    rules: tuple[RuleRef, ...],
) -> Authorship:
    """The author of a stored request's change, as the checkout's HEAD has it."""
    if not needed(rules):
        return NOT_NEEDED
    try:
        head = gitrepo.head(root).commit
    except ClonedError as exc:
        return Authorship.not_known(exc.message)
    file = None if action == "delete" else origin_file(origin)
    current = None
    if file is not None and head is not None:
        try:
            found = revisions.digests_at(root, revisions.Revision(head, head), [file])
        except ClonedError as exc:
            return Authorship.not_known(exc.message)
        current = (found or {}).get(address)
    return author_of(
        root,
        approvers,
        address=address,
        file=file,
        current=current,
        head=head,
        working_tree=True,
    )


def head_commit(root: Path) -> str | None:
    """HEAD's commit, or None (no commit yet, or not a git repository)."""
    try:
        return gitrepo.head(root).commit
    except ClonedError:
        return None
