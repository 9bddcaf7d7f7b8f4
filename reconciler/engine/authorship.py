"""Who authored a change, for rules with `excludeAuthor`: the approver who signed the commit.

The author of a change is the signer of the commit that introduced it: walking back from the
commit planned through `.cloned/`'s history, merges and all their parents included, the commit
after which the resource is as planned while no parent of it had it so, in any resource file.
A merge whose other side already had the change, or a commit that only moves the document to
another file, passes the authorship on to the commit that made the content. The commit must
carry an SSH signature (git's `gpg.format=ssh`) that `ssh-keygen` verifies against the applied
Workspace's approvers (an allowed-signers list Cloned derives from them); the approver whose key
signed it is the author.
Anything else (an unsigned commit, a key that is no approver's, an uncommitted edit, a change
older than the walk reaches, a file on the way that does not validate, two commits by different
approvers that each made the same content) leaves the author unknown, and a rule with
`excludeAuthor` then cannot be met: it cannot tell whose approval to refuse.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitrepo, keys
from reconciler.approvals.validity import NOT_NEEDED, Approver, Authorship
from reconciler.engine import revision as revisions
from reconciler.errors import ClonedError
from reconciler.load.checkfile import check_files
from reconciler.load.files import CLONED_DIR, MAX_FILE_BYTES, SourceFile, is_resource_path
from reconciler.model import names
from reconciler.plan.types import Change, RuleRef

MAX_WALK = 200
"""Commits of `.cloned/`'s history (those that change it, and merges) to read before giving
up."""


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
    then every resource file must be committed); the history of every resource file is walked
    in any case, since a change can reach its file by a move. `current` is the digest of its
    state as planned (None: it is deleted). With `working_tree`, the plan is of the working
    tree, so an uncommitted edit of the file means the change is in no commit yet."""
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
        commits = _introduced_by(root, head, address, current)
        if not commits:
            return Authorship.not_known(
                f"no commit among the last {MAX_WALK} of {CLONED_DIR} made the change"
            )
        if shutil.which("ssh-keygen") is None:
            return Authorship.not_known(
                f"commit {gitrepo.short(commits[0])}'s signature cannot be checked: ssh-keygen "
                "(openssh-client) is not installed"
            )
        signers = {commit: _signer(root, approvers, commit) for commit in commits}
    except ClonedError as exc:
        return Authorship.not_known(exc.message)
    for commit, signer in signers.items():
        if signer is None:
            return Authorship.not_known(
                f"commit {gitrepo.short(commit)} is not signed by an approver"
            )
    authors = sorted({signer for signer in signers.values() if signer is not None})
    if len(authors) > 1:
        made = ", ".join(f"{gitrepo.short(c)} ({signers[c]})" for c in commits)
        return Authorship.not_known(
            f"commits {made} each made the change on their own, so it has no one author"
        )
    return Authorship.of(authors[0])


def _signer(root: Path, approvers: dict[str, Approver], commit: str) -> str | None:
    """The approver whose key signed `commit` (a good SSH signature by their listed key), or
    None."""
    signature = gitrepo.commit_signature(root, commit, allowed_signers(approvers))
    approver = approvers.get(signature.signer)
    if (
        signature.status != "G"
        or approver is None
        or keys.fingerprint(approver.public_key) != signature.key
    ):
        return None
    return approver.name


class Undecided(ClonedError):
    """The history walk cannot tell which commit made the change."""


@dataclass(frozen=True)
class _FileState:
    """What one resource file declares at a commit: address -> digest of its valid documents,
    and whether that is all it declares (False when it could not be read or does not validate,
    so a resource could be in it unseen)."""

    found: dict[str, str]
    complete: bool


class _History:
    """The resource files' history from `head` (git's `--full-history`, parents rewritten) and
    what each commit there declares, read once per commit and parsed once per file content."""

    def __init__(self, root: Path, head: str, address: str, current: str | None) -> None:
        self.root = root
        self.address = address
        self.current = current
        listed = gitrepo.history_graph(root, head, [CLONED_DIR], limit=MAX_WALK)
        self.newest = listed[0][0] if listed else None
        self.graph = dict(listed)
        self._holds: dict[str, bool] = {}
        self._parsed: dict[tuple[str, bytes], _FileState] = {}

    def holds(self, commit: str) -> bool:
        """Whether `address` is as planned at `commit`, in any of its resource files (for a
        delete: in none of them); `Undecided` when a file that could hold it is unreadable."""
        if commit not in self._holds:
            self._holds[commit] = self._read(commit)
        return self._holds[commit]

    def _read(self, commit: str) -> bool:
        files, unreadable = gitrepo.read_files(
            self.root, commit, CLONED_DIR, max_bytes=MAX_FILE_BYTES, wanted=is_resource_path
        )
        states = [self._parse(f.rel, f.data) for f in files]
        states += [_FileState({}, complete=False) for _ in unreadable]
        digests = {s.found[self.address] for s in states if self.address in s.found}
        if self.current is not None and self.current in digests:
            return True
        if self.current is None and digests:
            return False
        if not all(s.complete for s in states):
            unclear = sorted(
                [f.rel for f, s in zip(files, states, strict=False) if not s.complete]
                + [u.rel for u in unreadable]
            )
            raise Undecided(
                f"whether commit {gitrepo.short(commit)} already had the change cannot be told: "
                f"{unclear[0]} there cannot be read or does not validate"
            )
        return self.current is None

    def _parse(self, rel: str, data: bytes) -> _FileState:
        from reconciler.canonical import digest
        from reconciler.engine.planner import resource_state

        key = (rel, hashlib.sha256(data).digest())
        if key not in self._parsed:
            (result,) = check_files([SourceFile(rel, data)])
            found = {
                names.address(document["kind"], document["metadata"]["name"]): digest(
                    resource_state(document)
                )
                for _index, _line, document in result.documents
            }
            self._parsed[key] = _FileState(found, complete=not result.problems)
        return self._parsed[key]

    def introducers(self, head: str) -> list[str]:
        """The commits that made the change: walking back from `head` through every parent
        that already had `address` as planned, those none of whose parents had it."""
        if self.newest is None:
            raise Undecided(f"no commit reachable from {gitrepo.short(head)} has {CLONED_DIR}")
        start = head if head in self.graph else self.newest
        if not self.holds(start):
            raise Undecided(f"commit {gitrepo.short(head)} does not have the change as planned")
        found: list[str] = []
        seen = {start}
        queue = [start]
        while queue:
            commit = queue.pop(0)
            if commit not in self.graph:
                raise Undecided(
                    f"the change is older than the last {MAX_WALK} commits of {CLONED_DIR} "
                    "(and merges), so the commit that made it is not known"
                )
            parents = self.graph[commit]
            holding = [parent for parent in parents if self.holds(parent)]
            if not parents and self.current is None:
                continue  # absent since the first commit of .cloned/ on this side
            if not holding:
                found.append(commit)
            for parent in holding:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return found


def _introduced_by(root: Path, head: str, address: str, current: str | None) -> list[str]:
    """The commits that made `address` have the digest `current` (None: deleted) at `head`:
    each has it so while none of its parents had it, in any resource file (a merge whose other
    side already had it, or a commit that only moves the document to another file, passes the
    authorship on to the commit that made the content). Raises `Undecided` when the walk
    cannot tell (the history is longer than MAX_WALK, or a file on the way does not validate)."""
    history = _History(root, head, address, current)
    return history.introducers(head)


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
