"""The git adapter: the only package that imports gitpython (STYLE practice 1).

The engine reaches git through these names alone (`from reconciler import gitrepo`). Each
module is one job: `repo` the basics every other one stands on (opening the repository, git's
errors, HEAD and revisions); `committed` reading a workspace as committed at some revision,
straight from git objects (CI dry-runs and `--base REF`, no checkout and no writes); `worktree`
the working tree's uncommitted changes; `commit` the audit commit, which holds only Cloned's
own files and never the user's other staged or unstaged changes; `sync` following a tracked
branch for the reconcile loop; `signatures` who made a change, from signed commits.
"""

from reconciler.gitrepo.commit import (
    FALLBACK_AUTHOR,
    IN_PROGRESS,
    Author,
    Guard,
    commit_paths,
    rewrites,
)
from reconciler.gitrepo.committed import (
    LINK_HOPS,
    SYMLINK_MODE,
    CommittedFile,
    Unreadable,
    changed_between,
    history_touches,
    read_file,
    read_files,
)
from reconciler.gitrepo.repo import Head, head, init, resolve, short, toplevel
from reconciler.gitrepo.signatures import (
    CommitSignature,
    commit_signature,
    commits_touching,
    first_parent_history,
    history_graph,
    is_ancestor,
    is_shallow,
    since,
)
from reconciler.gitrepo.sync import fast_forward, git_dir, push
from reconciler.gitrepo.worktree import changed_paths, tracked

__all__ = [
    "FALLBACK_AUTHOR",
    "IN_PROGRESS",
    "LINK_HOPS",
    "SYMLINK_MODE",
    "Author",
    "CommitSignature",
    "CommittedFile",
    "Guard",
    "Head",
    "Unreadable",
    "changed_between",
    "changed_paths",
    "commit_paths",
    "commit_signature",
    "commits_touching",
    "fast_forward",
    "first_parent_history",
    "git_dir",
    "head",
    "history_graph",
    "history_touches",
    "init",
    "is_ancestor",
    "is_shallow",
    "push",
    "read_file",
    "read_files",
    "resolve",
    "rewrites",
    "short",
    "since",
    "toplevel",
    "tracked",
]
