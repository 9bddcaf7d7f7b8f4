"""What apply checks before its first change (SPEC section 3: apply is crash-safe; issue 8).

Everything after the changes (writing `cloned.lock`, exporting and signing the audit log, the
audit commit) must not fail for a reason that was already true before them, so apply checks it
first and refuses with nothing applied: a workspace with applied history in git but no state
database, a missing or replaced audit key, a lock file or audit folder that cannot be written,
committed audit files that this checkout deleted or rewrote, and applied records the audit log
does not account for.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler import gitrepo
from reconciler.audit.files import AUDIT_DIR, CHECKPOINTS_FILE, SEGMENTS_DIR
from reconciler.audit.signing import KEY_FILE, FileSigner, workspace_signer
from reconciler.engine import actual as actual_state
from reconciler.engine import auditcommit
from reconciler.engine.drift import UnaccountedState, unaccounted
from reconciler.errors import ClonedError
from reconciler.state import audit_rows
from reconciler.state.db import DB_FILE, StateDB
from reconciler.state.meta import get_meta

HISTORY_PATHS = (actual_state.LOCK_FILE.as_posix(), AUDIT_DIR.as_posix())


def refuse_unknown_history(root: Path, db: StateDB | None) -> None:
    """Fail closed where this workspace has applied before, as the checkout or its git history
    shows (`cloned.lock`, `.cloned/audit/`), but the state database is missing or holds no
    history: a new one would re-apply everything as a bootstrap, under the branch's own
    policy and without approvals, and fork the audit log."""
    if db is not None and audit_rows.head(db.reader) is not None:
        return
    seen = [p for p in HISTORY_PATHS if (root / p).exists()]
    commit = gitrepo.history_touches(root, HISTORY_PATHS)
    if not seen and commit is None:
        return
    lacking = "no state database" if db is None else f"a state database without history ({DB_FILE})"
    if seen:
        found = f"this checkout has applied state ({', '.join(seen)}) but {lacking}"
        if commit is not None:
            found += f", and the git history has it too (commit {gitrepo.short(commit)})"
    else:
        found = (
            f"the git history has applied state (commit {gitrepo.short(commit or '')} changed "
            f"{' or '.join(HISTORY_PATHS)}) but this checkout has {lacking}"
        )
    raise ClonedError(
        f"{found}, so apply cannot continue the workspace's history here and will not start "
        "it again; nothing was written",
        hint="run apply where the state database lives, or restore it from a backup; "
        "`cloned plan` here is a dry run against cloned.lock",
    )


STATE_DIR = (Path(".cloned") / "state").as_posix()


def refuse_tracked_state(root: Path) -> None:
    """Fail closed when git tracks files under `.cloned/state/`: that folder is this
    machine's (the state database, installed packages, environments, caches), and a pull
    request that commits into it could hand a fresh clone a database or a package that no
    apply made here."""
    found = [path for folder in _state_paths(root) for path in gitrepo.tracked(root, folder)]
    if found:
        raise ClonedError(
            f"git tracks files in {STATE_DIR}/ ({', '.join(found)}): that folder belongs to "
            "this machine, and Cloned does not use state that arrived through git; nothing "
            "was written",
            hint=f"`git rm -r --cached {STATE_DIR}`, add `{STATE_DIR}/` to .gitignore, commit",
        )


def _state_paths(root: Path) -> list[str]:
    """`.cloned/state` as spelled, and where it really is inside the workspace when a link on
    the way leads elsewhere (`.cloned` committed as a link to `cfg/` makes `cfg/state/` the
    state, which git tracks under that name)."""
    real = Path(os.path.realpath(root / STATE_DIR))
    base = Path(os.path.realpath(root))
    if real == base / STATE_DIR or not real.is_relative_to(base):
        return [STATE_DIR]
    return [STATE_DIR, real.relative_to(base).as_posix()]


def refuse_lost_state(root: Path) -> None:
    """`refuse_unknown_history` for a caller without the database open (the reconcile loop,
    before it starts): a damaged database is an error too."""
    with StateDB.existing(root) as db:
        refuse_unknown_history(root, db)


def check(root: Path, db: StateDB, *, busy: bool, commit: bool) -> None:
    """Everything apply needs after its changes; `busy`: it will apply or write something,
    `commit`: it will make the audit commit."""
    _audit_key(root, db)
    _writable(root)
    if commit and auditcommit.settings(db).enabled:
        auditcommit.check_history(root)
    if busy:
        found = unaccounted(db)
        if found:
            raise UnaccountedState(found, doing="nothing was applied")


def _audit_key(root: Path, db: StateDB) -> None:
    """The audit key is there and is the pinned one (before the first export: readable)."""
    if get_meta(db.reader, audit_rows.PUBLIC_KEY) is not None:
        workspace_signer(db, root)
    elif (root / KEY_FILE).exists():
        FileSigner.load(root / KEY_FILE)


def _writable(root: Path) -> None:
    """The files apply replaces can be replaced: each is a file (or absent) in a folder apply
    may write to."""
    for rel, want_dir in (
        (actual_state.LOCK_FILE, False),
        (AUDIT_DIR, True),
        (SEGMENTS_DIR, True),
        (CHECKPOINTS_FILE, False),
        (KEY_FILE.parent, True),
    ):
        path = root / rel
        if path.exists() and path.is_dir() != want_dir:
            kind = "a folder" if want_dir else "a file"
            raise ClonedError(
                f"{rel}: is not {kind}, so apply could not write it; nothing was applied"
            )
        folder = path if want_dir else path.parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ClonedError(
                f"{folder}: not writable, so apply could not write {rel}; nothing was applied"
            )
