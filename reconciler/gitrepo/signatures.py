"""Who made a change: the commits that touched a file, the history of the resource files (merges
and all their parents), and SSH signatures checked against the approvers' allowed signers
(engine/authorship.py and engine/drift.py read these).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import GitFailed
from reconciler.gitrepo.repo import _git_errors, _in_tree, _prefix, _repo, short


def commits_touching(root: Path, commit: str, paths: Iterable[str], *, limit: int) -> list[str]:
    """The commits reachable from `commit` that change any of `paths` (relative to the
    workspace root), newest first, at most `limit` (git's history simplification: a merge
    that took one side's content as it was is not listed, the side's commit is)."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [_in_tree(prefix, p) for p in paths]
    with _git_errors(f"git log failed at {short(commit)}"):
        text = repo.git.log(
            f"-n{limit}", "--no-show-signature", "--format=%H", commit, "--", *specs
        )
    return str(text).split()


def history_graph(
    root: Path, commit: str, paths: Iterable[str], *, limit: int
) -> list[tuple[str, tuple[str, ...]]]:
    """The history of `paths` (relative to the workspace root) reachable from `commit`, as
    (commit, parents) pairs, newest first, at most `limit` of them: git's `--full-history` with
    its parents rewritten (`--parents`), so every commit that changes any of `paths` is
    listed, and every merge, and each parent named is the nearest listed ancestor along that
    side, with the same content of `paths` as the real parent. A commit with no parents
    listed has none that held any of `paths`. The first pair is the newest commit whose
    content of `paths` is that of `commit` (`commit` itself, or the nearest ancestor that
    changes them, when `commit` does not)."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [_in_tree(prefix, p) for p in paths]
    with _git_errors(f"git rev-list failed at {short(commit)}"):
        text = repo.git.rev_list(
            f"--max-count={limit}", "--full-history", "--parents", commit, "--", *specs
        )
    graph = []
    for line in str(text).splitlines():
        ids = line.split()
        if ids:
            graph.append((ids[0], tuple(ids[1:])))
    return graph


def first_parent_history(root: Path, commit: str, paths: Iterable[str], *, limit: int) -> list[str]:
    """The commits along `commit`'s first parents that change any of `paths` (relative to the
    workspace root), newest first, at most `limit`: the branch's own line of history."""
    repo = _repo(root)
    prefix = _prefix(repo, root)
    specs = [_in_tree(prefix, p) for p in paths]
    with _git_errors(f"git rev-list failed at {short(commit)}"):
        text = repo.git.rev_list(f"--max-count={limit}", "--first-parent", commit, "--", *specs)
    return str(text).split()


def since(root: Path, base: str, commit: str) -> set[str]:
    """Every commit reachable from `commit` but not from `base` (`git rev-list base..commit`)."""
    with _git_errors(f"git rev-list failed at {short(commit)}"):
        text = _repo(root).git.rev_list(f"{base}..{commit}")
    return set(str(text).split())


def is_shallow(root: Path) -> bool:
    """Whether the repository's history is cut off (a shallow clone), so walks cannot be whole."""
    with _git_errors("git rev-parse failed"):
        return str(_repo(root).git.rev_parse("--is-shallow-repository")).strip() == "true"


def is_ancestor(root: Path, ancestor: str, commit: str) -> bool:
    """Whether `ancestor` is reachable from `commit` (`git merge-base --is-ancestor`)."""
    import git

    repo = _repo(root)
    try:
        repo.git.merge_base("--is-ancestor", ancestor, commit)
    except git.GitCommandError as exc:
        if exc.status == 1:
            return False
        raise GitFailed(f"git merge-base failed at {short(commit)}: {exc.stderr}") from None
    return True


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
