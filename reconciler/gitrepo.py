"""The git adapter: the only module that imports gitpython (STYLE practice 1).

Three jobs: read a workspace as committed at some revision straight from git objects (CI
dry-runs and `--base REF`, no checkout and no writes); make the audit commit, which holds only
Cloned's own files and never the user's other staged or unstaged changes; and the few queries
the reconcile loop needs (HEAD, a dirty tree, fetching a tracked branch).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ClonedError, GitError, GitFailed, NotAGitRepository

if TYPE_CHECKING:
    import git

IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "BISECT_LOG": "a bisect",
}
SYMLINK_MODE = 0o120000
LINK_HOPS = 8


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None outside any repository."""
    repo = _repo_or_none(path)
    if repo is None or repo.working_tree_dir is None:
        return None
    return Path(repo.working_tree_dir)


def init(path: Path) -> None:
    """Create a git repository at `path`."""
    import git

    try:
        git.Repo.init(path)
    except git.GitError as exc:
        raise GitFailed(f"could not create a git repository in {path}: {exc}") from exc


def _repo_or_none(path: Path) -> git.Repo | None:
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def _repo(root: Path) -> git.Repo:
    repo = _repo_or_none(root)
    if repo is None or repo.working_tree_dir is None:
        raise NotAGitRepository(f"{root} is not inside a git work tree")
    return repo


def _prefix(repo: git.Repo, root: Path) -> str:
    """`root` relative to the work tree, in git's spelling ("" at the top)."""
    assert repo.working_tree_dir is not None
    rel = os.path.relpath(os.path.realpath(root), os.path.realpath(repo.working_tree_dir))
    return "" if rel == "." else Path(rel).as_posix()


@contextlib.contextmanager
def _git_errors(what: str) -> Iterator[None]:
    """Turn a failed git command into a GitFailed that says what Cloned was doing."""
    import git

    try:
        yield
    except git.GitCommandError as exc:
        raise GitFailed(f"{what}: {_stderr(exc)}") from None
    except (git.BadObject, git.BadName, ValueError) as exc:  # a missing or damaged object
        raise GitFailed(f"{what}: {exc}") from None


# --- Revisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """Where HEAD is: its commit (None on an unborn branch) and branch (None when detached)."""

    commit: str | None
    branch: str | None


def head(root: Path) -> Head:
    """HEAD of the repository holding `root`."""
    repo = _repo(root)
    branch = None if repo.head.is_detached else repo.head.ref.name
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:
        commit = None
    return Head(commit, branch)


def resolve(root: Path, ref: str, *, flag: str = "--base") -> str:
    """The full id of the commit `ref` names; a clear error naming `flag` when it names none."""
    import git

    repo = _repo(root)
    if not ref or ref.startswith("-"):
        raise ClonedError(f"{flag}: {ref!r} is not a revision")
    try:
        return str(repo.commit(ref).hexsha)
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
        raise ClonedError(
            f"{flag}: {ref!r} names no commit in this repository",
            hint="fetch it first (CI checkouts are often shallow: use fetch-depth: 0)",
        ) from None


def short(commit: str) -> str:
    """The 12-digit abbreviation Cloned prints for a commit."""
    return commit[:12]


# --- Reading committed files -----------------------------------------------------------------


@dataclass(frozen=True)
class CommittedFile:
    """A file as committed: its path relative to the workspace root, and its bytes."""

    rel: str
    data: bytes


@dataclass(frozen=True)
class Unreadable:
    """A committed path that cannot be read as a file, and why."""

    rel: str
    reason: str


def read_files(
    root: Path,
    commit: str,
    folder: str,
    *,
    max_bytes: int,
    wanted: Callable[[str], bool] = lambda rel: True,
) -> tuple[list[CommittedFile], list[Unreadable]]:
    """The files under `folder` (relative to the workspace root `root`) at `commit` whose path
    `wanted` accepts, sorted by path. Symlinks are followed only to files inside the same
    commit; files over `max_bytes` are reported, not read."""

    with _git_errors(f"cannot read {folder} at {short(commit)}"):
        return _read_files(root, commit, folder, max_bytes=max_bytes, wanted=wanted)


def _read_files(
    root: Path, commit: str, folder: str, *, max_bytes: int, wanted: Callable[[str], bool]
) -> tuple[list[CommittedFile], list[Unreadable]]:
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    tree = repo.commit(commit).tree
    top = posixpath.join(prefix, folder) if prefix else folder
    try:
        sub = tree / top
    except KeyError:
        return [], []
    found: list[CommittedFile] = []
    problems: list[Unreadable] = []
    blobs = [item for item in sub.traverse() if isinstance(item, git.Blob)]
    for item in blobs:
        path = str(item.path)
        rel = posixpath.relpath(path, prefix) if prefix else path
        if not wanted(rel):
            continue
        blob = _follow(tree, item)
        if isinstance(blob, str):
            problems.append(Unreadable(rel, blob))
            continue
        # The size comes from git's header reader; a content stream must always be read to
        # its end, or git's object reader falls out of step.
        if blob.size > max_bytes:
            problems.append(
                Unreadable(rel, f"file is {blob.size:,} bytes; the limit is {max_bytes:,}")
            )
        else:
            found.append(CommittedFile(rel, blob.data_stream.read()))
    found.sort(key=lambda f: f.rel)
    return found, problems


def changed_between(root: Path, base: str, head: str, folder: str) -> list[str]:
    """Files under `folder` (relative to the workspace root) that differ between two commits,
    on either side: added, deleted, modified (renames count as a delete and an add)."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    top = posixpath.join(prefix, folder) if prefix else folder
    with _git_errors("git diff failed"):
        text = repo.git.diff("--name-only", "-z", "--no-renames", base, head, "--", top)
    paths = [p for p in text.split("\0") if p]
    return sorted(posixpath.relpath(p, prefix) if prefix else p for p in paths)


def read_file(root: Path, commit: str, rel: str, *, max_bytes: int) -> bytes | None:
    """One file (relative to the workspace root) at `commit`, or None when it is not there."""
    with _git_errors(f"cannot read {rel} at {short(commit)}"):
        return _read_file(root, commit, rel, max_bytes=max_bytes)


def _read_file(root: Path, commit: str, rel: str, *, max_bytes: int) -> bytes | None:
    repo = _repo(root)
    prefix = _prefix(repo, root)
    tree = repo.commit(commit).tree
    try:
        item = tree / (posixpath.join(prefix, rel) if prefix else rel)
    except KeyError:
        return None
    if item.type != "blob":
        return None
    blob = _follow(tree, item)
    if isinstance(blob, str):
        raise ClonedError(f"{rel} at {short(commit)}: {blob}")
    if blob.size > max_bytes:
        raise ClonedError(f"{rel} at {short(commit)}: larger than {max_bytes:,} bytes")
    return bytes(blob.data_stream.read())


def _follow(tree: git.Tree, item: git.Blob) -> git.Blob | str:
    """The blob a committed symlink leads to inside the same commit, or why it leads nowhere."""
    for _ in range(LINK_HOPS):
        if item.mode != SYMLINK_MODE:
            return item
        target = item.data_stream.read().decode("utf-8", "replace")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(item.path), target))
        if target.startswith("/") or joined == ".." or joined.startswith("../"):
            return f"symlink points outside the repository ({target})"
        try:
            item = tree / joined
        except KeyError:
            return f"symlink points to nothing in this commit ({target})"
        if item.type != "blob":
            return f"symlink points to a folder ({target}); only file links are followed"
    return "too many levels of symlinks"


def history_touches(root: Path, paths: Iterable[str]) -> str | None:
    """The newest commit reachable from HEAD that added, changed or deleted any of `paths`
    (relative to the workspace root), or None: none did, there is no commit yet, or `root` is
    not in a git repository. One `git log -1`, cheap on any history."""
    repo = _repo_or_none(root)
    if repo is None or repo.working_tree_dir is None:
        return None
    try:
        repo.head.commit  # noqa: B018 - raises ValueError on an unborn branch
    except ValueError:
        return None
    prefix = _prefix(repo, root)
    specs = [posixpath.join(prefix, p) if prefix else p for p in paths]
    with _git_errors("cannot read the git history"):
        found = repo.git.log("-1", "--format=%H", "HEAD", "--", *specs).strip()
    return found or None


# --- The working tree ------------------------------------------------------------------------


def changed_paths(root: Path, paths: Iterable[str]) -> list[str]:
    """Paths under `paths` (relative to the workspace root) whose working-tree or staged
    content differs from HEAD, untracked files included; relative to the workspace root."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [posixpath.join(prefix, p) if prefix else p for p in paths]
    # No optional locks: a plain `git status` may rewrite the index to refresh its stat
    # cache, and reading must write nothing.
    with _git_errors("git status failed"):
        text = repo.git.status(
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            *specs,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
    changed = []
    entries = iter(text.split("\0"))
    for entry in entries:
        if not entry:
            continue
        if entry[0] in "RC":
            next(entries, None)  # a rename's second field is its old path
        path = entry[3:]
        changed.append(posixpath.relpath(path, prefix) if prefix else path)
    return sorted(changed)


# --- The audit commit ------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """Who a commit is by."""

    name: str
    email: str


FALLBACK_AUTHOR = Author("Cloned", "cloned@localhost")


@dataclass(frozen=True)
class Guard:
    """Committed files a commit may only add to (paths relative to the workspace root)."""

    immutable: tuple[str, ...] = ()  # files, or folders of files, never changed or deleted
    append_only: tuple[str, ...] = ()  # files whose committed bytes must stay their beginning


def rewrites(root: Path, guard: Guard) -> list[str]:
    """What the working tree does to files `guard` protects, as committed at HEAD: one
    `deletes PATH` or `rewrites PATH` each (empty before the first commit)."""
    repo = _repo(root)
    try:
        parent = repo.head.commit
    except ValueError:
        return []
    prefix = _prefix(repo, root)
    protected = [*guard.immutable, *guard.append_only]
    specs = [posixpath.join(prefix, p) if prefix else p for p in protected]
    with _git_errors("git diff failed"):
        text = repo.git.diff(
            "--no-renames",
            "-z",
            "--name-status",
            parent.hexsha,
            "--",
            *specs,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
    fields = [f for f in text.split("\0") if f]
    found = []
    for status, path in zip(fields[::2], fields[1::2], strict=True):
        rel = posixpath.relpath(path, prefix) if prefix else path
        if status == "D" or not os.path.isfile(os.path.join(str(root), rel)):
            found.append(f"deletes {rel}")
        elif rel in guard.append_only:
            old = (parent.tree / path).data_stream.read()
            if not (root / rel).read_bytes().startswith(old):
                found.append(f"rewrites {rel} (it may only grow)")
        else:
            found.append(f"rewrites {rel}")
    return found


def commit_paths(
    root: Path,
    paths: Iterable[str],
    message: str,
    author: Author | None,
    *,
    guard: Guard | None = None,
    exclude: Iterable[str] = (),
) -> str | None:
    """Commit exactly the current working-tree content of `paths` (relative to the workspace
    root; new, changed and deleted files) on top of HEAD, and nothing else; return the new
    commit, or None when they already match HEAD.

    The commit is built in a private index, so whatever the user has staged or changed
    elsewhere stays exactly as it was; no hooks run. The branch moves only if it still points
    where it did (compare-and-swap), so a concurrent commit is never overwritten. Refuses, with
    the reason, on a detached HEAD and in the middle of a merge, rebase or similar, and when
    it would delete or rewrite a file `guard` protects. `exclude` holds globs (relative to the
    workspace root) of files under `paths` that are never committed.
    """
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    if repo.head.is_detached:
        raise GitError("HEAD is detached, so there is no branch to commit to")
    git_dir = Path(repo.git_dir)
    for marker, what in IN_PROGRESS.items():
        if (git_dir / marker).exists():
            raise GitError(f"{what} is in progress in this repository")
    if guard is not None:
        refused = rewrites(root, guard)
        if refused:
            raise GitError(
                f"it {'; it '.join(refused)}, as committed at HEAD; committed audit history "
                "is never rewritten",
                hint="restore the files with `git checkout HEAD -- .cloned/audit`",
            )
    branch = repo.head.ref
    try:
        parent: str | None = repo.head.commit.hexsha
    except ValueError:
        parent = None
    specs = [posixpath.join(prefix, p) if prefix else p for p in paths]
    try:
        with tempfile.TemporaryDirectory(prefix="cloned-index-") as scratch:
            env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
            repo.git.read_tree(parent or "--empty", env=env)
            tracked = set(repo.git.ls_files("-z", "--", *specs, env=env).split("\0")) - {""}
            present = [
                spec
                for spec in specs
                if os.path.lexists(os.path.join(repo.working_tree_dir or "", spec))
                or any(t == spec or t.startswith(spec + "/") for t in tracked)
            ]
            if not present:
                return None
            skip = [f":(exclude,glob){posixpath.join(prefix, g) if prefix else g}" for g in exclude]
            repo.git.add("--all", "--force", "--", *present, *skip, env=env)
            tree = repo.git.write_tree(env=env)
        if parent is not None and tree == repo.commit(parent).tree.hexsha:
            return None
        who = author or _configured_author(repo)
        committer = _configured_author(repo, fallback=who)
        env = {
            "GIT_AUTHOR_NAME": who.name,
            "GIT_AUTHOR_EMAIL": who.email,
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", committer.name),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", committer.email),
        }
        parents = ["-p", parent] if parent is not None else []
        commit = repo.git.commit_tree(tree, *parents, "-m", message, env=env)
        repo.git.update_ref("-m", "cloned: audit commit", branch.path, commit, parent or "0" * 40)
    except git.GitCommandError as exc:
        raise GitFailed(f"git refused the audit commit: {_stderr(exc)}") from None
    # Keep the user's index in step for Cloned's paths only, so `git status` is clean there; if
    # that fails the commit still stands, and `git status` merely shows these paths as staged.
    with contextlib.suppress(git.GitCommandError):
        repo.git.reset("-q", commit, "--", *present)
    return str(commit)


def _configured_author(repo: git.Repo, fallback: Author = FALLBACK_AUTHOR) -> Author:
    """The identity git is configured with (environment first), else `fallback`."""
    reader = repo.config_reader()
    name = os.environ.get("GIT_AUTHOR_NAME") or reader.get_value("user", "name", "")
    email = os.environ.get("GIT_AUTHOR_EMAIL") or reader.get_value("user", "email", "")
    if name and email:
        return Author(str(name), str(email))
    return fallback


# --- Following a branch (the reconcile loop) -------------------------------------------------


def git_dir(root: Path) -> Path:
    """The repository's git directory (where HEAD and refs live), for watching."""
    return Path(_repo(root).git_dir)


def fast_forward(root: Path, remote: str, branch: str, *, own: Iterable[str] = ()) -> str | None:
    """Fetch `branch` from `remote` and bring the checked-out branch up to it; the new HEAD, or
    None when nothing new arrived.

    Fast-forwards when the branch is behind. When it is also ahead, and every commit it has
    that the remote lacks touches only `own` paths (relative to the workspace root: Cloned's
    audit commits), those commits are replayed on top of the remote's; any other divergence
    is refused. `merge --ff-only` and the replay refuse to overwrite uncommitted changes to
    the files they touch."""
    import git

    repo = _repo(root)
    prefix = _prefix(repo, root)
    if repo.head.is_detached or repo.head.ref.name != branch:
        raise ClonedError(f"--pull: {branch!r} is not the checked-out branch")
    before = head(root).commit
    try:
        repo.git.fetch("--quiet", remote, f"refs/heads/{branch}")
        fetched = repo.commit("FETCH_HEAD").hexsha
        if before is not None and repo.is_ancestor(repo.commit(fetched), repo.commit(before)):
            return None  # nothing new: up to date, or only ahead
        if before is None or repo.is_ancestor(repo.commit(before), repo.commit(fetched)):
            repo.git.merge("--ff-only", "--quiet", fetched)
            return str(fetched)
        specs = [posixpath.join(prefix, p) if prefix else p for p in own]
        ahead = repo.git.rev_list(f"{fetched}..{before}").split()
        for commit in ahead:
            touched = repo.git.diff_tree("--no-commit-id", "--name-only", "-r", commit).split()
            if not specs or any(
                not any(t == s or t.startswith(s + "/") for s in specs) for t in touched
            ):
                raise ClonedError(
                    f"could not fast-forward {branch} from {remote}: the branches diverged "
                    f"(commit {short(commit)} is only here)"
                )
        try:
            repo.git.rebase("--quiet", fetched)
        except git.GitCommandError:
            with contextlib.suppress(git.GitCommandError):
                repo.git.rebase("--abort")
            raise
    except git.GitCommandError as exc:
        raise GitFailed(f"could not bring {branch} up to {remote}: {_stderr(exc)}") from None
    return head(root).commit


def push(root: Path, remote: str, branch: str) -> None:
    """Push the checked-out branch to `remote` (fast-forward only)."""
    import git

    repo = _repo(root)
    try:
        repo.git.push("--quiet", remote, f"HEAD:refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise GitFailed(f"could not push {branch} to {remote}: {_stderr(exc)}") from None


def _stderr(exc: git.GitCommandError) -> str:
    """git's own message from a failed command, without gitpython's decoration."""
    return str(exc.stderr or exc).strip().removeprefix("stderr:").strip(" '\n")


# --- Who made a change: signed commits -------------------------------------------------------


def commits_touching(root: Path, commit: str, paths: Iterable[str], *, limit: int) -> list[str]:
    """The commits reachable from `commit` that change any of `paths` (relative to the
    workspace root), newest first, at most `limit` (git's history simplification: a merge
    that took one side's content as it was is not listed, the side's commit is)."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [posixpath.join(prefix, p) if prefix else p for p in paths]
    with _git_errors(f"git log failed at {short(commit)}"):
        text = repo.git.log(
            f"-n{limit}", "--no-show-signature", "--format=%H", commit, "--", *specs
        )
    return str(text).split()


def parent_of(root: Path, commit: str) -> str | None:
    """The first parent of `commit`, or None for a root commit."""
    with _git_errors(f"cannot read commit {short(commit)}"):
        parents = _repo(root).commit(commit).parents
    return str(parents[0].hexsha) if parents else None


def changed_in(root: Path, commit: str, folder: str) -> list[str]:
    """Files under `folder` (relative to the workspace root) that `commit` changes against its
    first parent (every file, for a root commit)."""
    parent = parent_of(root, commit)
    if parent is not None:
        return changed_between(root, parent, commit, folder)
    repo = _repo(root)
    prefix = _prefix(repo, root)
    top = posixpath.join(prefix, folder) if prefix else folder
    with _git_errors(f"git diff-tree failed at {short(commit)}"):
        text = repo.git.diff_tree(
            "--root", "--no-commit-id", "--name-only", "-r", "-z", commit, "--", top
        )
    paths = [p for p in text.split("\0") if p]
    return sorted(posixpath.relpath(p, prefix) if prefix else p for p in paths)


@dataclass(frozen=True)
class CommitSignature:
    """What git says of a commit's signature, checked against an allowed-signers list.

    `status` is git's `%G?`: `G` a good signature by a listed signer, `N` no signature, and
    `B`, `U`, `X`, `Y`, `R`, `E` the ways it can be bad or uncheckable; `signer` is the
    principal (the approver's name) and `key` the signing key's fingerprint, when known."""

    commit: str
    status: str
    signer: str
    key: str


def commit_signature(root: Path, commit: str, allowed_signers: str) -> CommitSignature:
    """Check `commit`'s SSH signature with `ssh-keygen`, against `allowed_signers` (the text of
    a `gpg.ssh.allowedSignersFile`: one `NAME namespaces="git" KEY` line per signer), which is
    written to a private temporary file. The user's own git configuration for signatures
    (another program, another signers file, `log.showSignature`) is overridden."""
    repo = _repo(root)
    with tempfile.TemporaryDirectory(prefix="cloned-signers-") as scratch:
        signers = os.path.join(scratch, "allowed_signers")
        with open(signers, "w", encoding="utf-8") as handle:
            handle.write(allowed_signers)
        options = [
            "-c",
            "gpg.format=ssh",
            "-c",
            "gpg.ssh.program=ssh-keygen",
            "-c",
            f"gpg.ssh.allowedSignersFile={signers}",
            "-c",
            "log.showSignature=false",
        ]
        with _git_errors(f"cannot check the signature of commit {short(commit)}"):
            text = repo.git.execute(
                ["git", *options, "log", "-1", "--format=%G?%x00%GS%x00%GK", commit, "--"]
            )
    status, signer, key = [*str(text).strip("\n").split("\0"), "", "", ""][:3]
    return CommitSignature(commit, status or "N", signer, key)
