"""Who authored a change, for rules with `excludeAuthor`: the approver who signed the commit.

The author of a change is the signer of the commit that introduced it: walking back from the
commit planned through `.cloned/`'s history, merges and all their parents included, the commit
after which the resource is as planned while no parent of it had it so, in any resource file.
A merge whose other side already had the change, or a commit that only moves the document to
another file, passes the authorship on to the commit that made the content; a merge whose side
is an ancestor of its other side (which `git merge` never makes: it brings back old content)
does not, and is itself the commit that made it. A change made in several commits since the
applied state has every one's signer as an author: the walk goes on from each commit to the
content before it, until it reaches what is applied. The commit must
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
from reconciler.canonical import digest
from reconciler.engine import revision as revisions
from reconciler.engine.planner import content_digest
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
    applied: str | None = None,
) -> Authorship:
    """The approvers who signed the commits that made `address` what it is at `head`, from
    `applied` (the digest of its applied state; None: not applied yet).

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
        commits, earlier = _introduced_by(root, head, address, current, applied)
        if not commits:
            return Authorship.not_known(
                f"no commit among the last {MAX_WALK} of {CLONED_DIR} made the change"
            )
        if shutil.which("ssh-keygen") is None:
            return Authorship.not_known(
                f"commit {gitrepo.short(commits[0])}'s signature cannot be checked: ssh-keygen "
                "(openssh-client) is not installed"
            )
        signers = {commit: _signer(root, approvers, commit) for commit in (*commits, *earlier)}
    except ClonedError as exc:
        return Authorship.not_known(exc.message)
    for commit, signer in signers.items():
        if signer is None:
            return Authorship.not_known(
                f"commit {gitrepo.short(commit)} is not signed by an approver"
            )
    authors = sorted({signers[commit] or "" for commit in commits})
    if len(authors) > 1:
        made = ", ".join(f"{gitrepo.short(c)} ({signers[c]})" for c in commits)
        return Authorship.not_known(
            f"commits {made} each made the change on their own, so it has no one author"
        )
    return Authorship.of(authors[0], tuple(signers[c] or "" for c in earlier))


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

    def __init__(self, root: Path, head: str, address: str) -> None:
        self.root = root
        self.address = address
        listed = gitrepo.history_graph(root, head, [CLONED_DIR], limit=MAX_WALK)
        self.newest = listed[0][0] if listed else None
        self.graph = dict(listed)
        self._found: dict[str, tuple[frozenset[str], str | None]] = {}
        self._parsed: dict[tuple[str, bytes], _FileState] = {}
        self._ancestry: dict[tuple[str, str], bool] = {}
        self.range: set[str] = set()

    def holds(self, commit: str, want: str | None) -> bool:
        """Whether `address` has the digest `want` at `commit`, in any of its resource files
        (None: it is in none of them); `Undecided` when a file that could hold it is
        unreadable."""
        digests, unclear = self._read(commit)
        if want is not None and want in digests:
            return True
        if want is None and digests:
            return False
        if unclear is not None:
            raise Undecided(
                f"whether commit {gitrepo.short(commit)} already had the change cannot be told: "
                f"{unclear} there cannot be read or does not validate"
            )
        return want is None

    def digest_at(self, commit: str) -> str | None:
        """The digest `address` has at `commit` (None: absent); `Undecided` when unclear."""
        digests, unclear = self._read(commit)
        if len(digests) == 1 and unclear is None:
            return next(iter(digests))
        if not digests and unclear is None:
            return None
        raise Undecided(
            f"what commit {gitrepo.short(commit)} had for {self.address} cannot be told"
        )

    def _read(self, commit: str) -> tuple[frozenset[str], str | None]:
        """The digests `address` has at `commit`, and a file that could hide another (or None)."""
        if commit not in self._found:
            files, unreadable = gitrepo.read_files(
                self.root, commit, CLONED_DIR, max_bytes=MAX_FILE_BYTES, wanted=is_resource_path
            )
            states = [self._parse(f.rel, f.data) for f in files]
            digests = frozenset(s.found[self.address] for s in states if self.address in s.found)
            unclear = sorted(
                [f.rel for f, st in zip(files, states, strict=True) if not st.complete]
                + [u.rel for u in unreadable]
            )
            self._found[commit] = (digests, unclear[0] if unclear else None)
        return self._found[commit]

    def replays(self, parent: str, others: tuple[str, ...]) -> bool:
        """Whether `parent` is an ancestor of another parent of the same merge: that side adds
        nothing, so content taken from it is brought back, not merged (`git merge` never
        makes such a commit)."""
        for other in others:
            if other != parent:
                key = (parent, other)
                if key not in self._ancestry:
                    self._ancestry[key] = gitrepo.is_ancestor(self.root, parent, other)
                if self._ancestry[key]:
                    return True
        return False

    def _parse(self, rel: str, data: bytes) -> _FileState:
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

    def start(self, head: str) -> str:
        """The listed commit whose `.cloned/` is `head`'s."""
        if self.newest is None:
            raise Undecided(f"no commit reachable from {gitrepo.short(head)} has {CLONED_DIR}")
        return head if head in self.graph else self.newest

    def bound(self, head: str, applied: str | None) -> None:
        """Limit the walk to the commits since the applied content: those reachable from `head`
        but not from the newest commit of the branch's own line (first parents) in which the
        resource is as applied (for a resource not applied yet: absent). Content that reaches
        the branch from before that commit (an old side branch merged in) is then made by the
        commit that brings it, never credited to whoever signed it long ago."""
        if gitrepo.is_shallow(self.root):
            raise Undecided("the clone is shallow, so the history of the change is cut off")
        for commit in gitrepo.first_parent_history(self.root, head, [CLONED_DIR], limit=MAX_WALK):
            if self.holds(commit, applied):
                self.range = gitrepo.since(self.root, commit, head)
                return
        raise Undecided(
            f"no commit among the last {MAX_WALK} of {CLONED_DIR} has {self.address} as applied, "
            "so where the change starts is not known"
        )

    def introducers(self, start: str, want: str | None) -> list[str]:
        """The commits that made `address` have the digest `want`: walking back from `start`
        through every parent since the applied content that already had it so (and is not a
        replayed ancestor), those none of whose such parents had it."""
        if not self.holds(start, want):
            raise Undecided(f"commit {gitrepo.short(start)} does not have the change as planned")
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
            holding = [p for p in parents if self.holds(p, want)]
            older = [p for p in holding if p not in self.range]
            if older:
                # The content is older than the applied point: it was brought back (a revert
                # undone, an old branch merged in), and by which commit cannot be told apart
                # from who carried it, so nobody is credited.
                raise Undecided(
                    f"the planned content is older than the applied one (commit "
                    f"{gitrepo.short(older[0])} had it), so who brought it back is not known"
                )
            if len(parents) > 1:
                holding = [p for p in holding if not self.replays(p, parents)]
            if not parents and want is None:
                continue  # absent since the first commit of .cloned/ on this side
            if not holding:
                found.append(commit)
            for parent in holding:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return found


MAX_STEPS = 50
"""Contents of one resource, from the applied one to the planned one, to follow at most."""


def _introduced_by(
    root: Path, head: str, address: str, current: str | None, applied: str | None
) -> tuple[list[str], list[str]]:
    """The commits that made `address` have the digest `current` (None: deleted) at `head`,
    and the commits before them that made the contents it had on the way from `applied`
    (each content's makers, walking back through the commits since the applied content).
    Raises `Undecided` when the walk cannot tell (the history is longer than MAX_WALK, a file
    on the way does not validate, or more than MAX_STEPS contents)."""
    history = _History(root, head, address)
    history.bound(head, applied)
    start = history.start(head)
    if start not in history.range:
        raise Undecided("no commit since the applied content made the change")
    last = history.introducers(start, current)
    earlier: list[str] = []
    todo = [parent for commit in last for parent in history.graph.get(commit, ())]
    done: set[tuple[str, str | None]] = set()
    while todo:
        parent = todo.pop()
        if parent not in history.range:
            continue  # the applied content's side: nothing before it is part of the change
        before = history.digest_at(parent)
        if before == applied or (parent, before) in done:
            continue
        done.add((parent, before))
        if len(done) > MAX_STEPS:
            raise Undecided(f"{address} changed in more than {MAX_STEPS} steps since applied")
        makers = history.introducers(parent, before)
        earlier += [c for c in makers if c not in earlier and c not in last]
        todo += [p for c in makers for p in history.graph.get(c, ())]
    return last, earlier


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
    if _only_tools(change):
        return Authorship.no_one("only the tool definitions its server lists changed")
    if change.action == "delete":
        file = origin_file(applied_origin or "")
        current = None
    else:
        file = origin_file(change.proposed.origin)
        assert change.proposed.after is not None
        current = content_digest(change.proposed.after)
    before = change.proposed.before
    return author_of(
        root,
        approvers,
        address=change.address,
        file=file,
        current=current,
        head=head,
        working_tree=working_tree,
        applied=content_digest(before) if before is not None else None,
    )


def _only_tools(change: Change) -> bool:
    """Whether the change moves a connector's tool pins and nothing else: its YAML and its
    package are as applied, so no commit made it (its server did)."""
    before, after = change.proposed.before, change.proposed.after
    if before is None or after is None or change.proposed.kind != "Connector":
        return False
    rest = {key: value for key, value in after.items() if key != "tools"}
    return rest == {key: value for key, value in before.items() if key != "tools"}


def for_request(
    root: Path,
    approvers: dict[str, Approver],
    *,
    address: str,
    action: str,
    origin: str,
    rules: tuple[RuleRef, ...],
    applied: str | None = None,
    paths: tuple[str, ...] = (),
) -> Authorship:
    """The author of a stored request's change, as the checkout's HEAD has it (`applied`: the
    digest of the resource's applied state, where the change starts; `paths`: the fields its
    diff changes)."""
    if not needed(rules):
        return NOT_NEEDED
    tools_only = bool(paths) and all(path.startswith("tools.") for path in paths)
    if action == "update" and address.startswith("connector.") and tools_only:
        return Authorship.no_one("only the tool definitions its server lists changed")
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
        applied=applied,
    )


def head_commit(root: Path) -> str | None:
    """HEAD's commit, or None (no commit yet, or not a git repository)."""
    try:
        return gitrepo.head(root).commit
    except ClonedError:
        return None
