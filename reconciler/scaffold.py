"""`cloned init`: a new repository (if needed) with a commented, valid starter `.cloned/`.

The starter is rendered from templates, validated in memory, written to a temporary folder and
renamed into place, so a failure never leaves half a workspace behind.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitrepo, keys
from reconciler.errors import ClonedError
from reconciler.load.files import CLONED_DIR

GITIGNORE_ENTRY = ".cloned/state/"


@dataclass(frozen=True)
class InitResult:
    """What `init_workspace` did, for `reconciler.usecases.init` to report."""

    root: Path
    created_repo: bool
    key: keys.KeyInfo
    key_created: bool
    files: tuple[str, ...]
    gitignore_updated: bool


def local_user() -> str:
    """The local user's name, made into a valid key and approver name."""
    try:
        raw = getpass.getuser()
    except (KeyError, OSError):
        raw = "me"
    return _slug(raw) or "me"


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:63]


def init_workspace(target: Path, *, name: str | None = None, user: str | None = None) -> InitResult:
    """Create the starter workspace in `target`; refuse if it already has one."""
    target = target.resolve()
    if (target / CLONED_DIR).exists():
        raise ClonedError(
            f"{target / CLONED_DIR} already exists: refusing to overwrite a workspace",
            hint="edit the files there, or run `cloned validate` to check them",
        )
    if target.exists() and not target.is_dir():
        raise ClonedError(f"{target} exists and is not a folder")
    workspace_name = _slug(name or target.name) or "workspace"
    user = user or local_user()
    files = _render(workspace_name, user, "ssh-ed25519 " + "A" * 68)  # shape check first
    _check_valid(files)

    target.mkdir(parents=True, exist_ok=True)
    created_repo = gitrepo.toplevel(target) is None
    if created_repo:
        gitrepo.init(target)
    key = keys.get(user)
    key_created = key is None
    if key is None:
        key = keys.generate(user)
    files = _render(workspace_name, user, key.public_key)
    _write_atomically(target, files)
    return InitResult(
        root=target,
        created_repo=created_repo,
        key=key,
        key_created=key_created,
        files=tuple(f"{CLONED_DIR}/{rel}" for rel in files),
        gitignore_updated=_ignore_state(target),
    )


def _check_valid(files: dict[str, str]) -> None:
    """Parse and validate the rendered starter, so a template bug can never ship a broken one."""
    from reconciler.load.validate import check_document
    from reconciler.load.yamlio import parse

    for rel, text in files.items():
        for document in parse(text):
            findings = check_document(document.data)
            if findings:
                raise AssertionError(f"starter {rel} is invalid: {findings[0].message}")


def _write_atomically(target: Path, files: dict[str, str]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".cloned-init-", dir=target))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        os.rename(staging, target / CLONED_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _ignore_state(target: Path) -> bool:
    """Add `.cloned/state/` to the target's .gitignore unless it is there already."""
    path = target / ".gitignore"
    existing = path.read_text() if path.exists() else ""
    lines = {line.strip() for line in existing.splitlines()}
    if {GITIGNORE_ENTRY, GITIGNORE_ENTRY.rstrip("/"), "/" + GITIGNORE_ENTRY} & lines:
        return False
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    path.write_text(
        f"{existing}{prefix}# Cloned's local state database and caches\n{GITIGNORE_ENTRY}\n"
    )
    return True


def _render(workspace: str, user: str, public_key: str) -> dict[str, str]:
    return {
        "workspace.yaml": WORKSPACE_TEMPLATE.format(
            workspace=workspace, user=user, public_key=public_key
        ),
        "budgets.yaml": BUDGETS_TEMPLATE,
    }


WORKSPACE_TEMPLATE = """\
# The Workspace: exactly one per repository. It says which policy applies and who may
# approve the changes that policy gates. Edit, commit, and review changes in pull requests;
# `cloned validate` checks this folder. Reference: docs/concepts.md
apiVersion: cloned/v1
kind: Workspace
metadata:
  name: {workspace}
spec:
  description: Agent workspace managed with Cloned.
  tier: personal                      # personal | team | enterprise
  # Built-in `baseline`: bootstrap and lowered limits apply automatically; raised budgets,
  # policy and workspace changes, deletes and wider connectors need one approval from admins.
  # Use `strict` for two approvals from distinct people other than the author.
  policyPacks: [baseline]
  approvers:
    # Made by `cloned init` (private half: $CLONED_HOME/keys/{user}). Add your team here;
    # each approver's key is an OpenSSH ed25519 public key (`cloned keys generate NAME`).
    - name: {user}
      publicKey: "{public_key}"
      groups: [admins]
  defaults:
    egress:
      allowHosts: []                  # deny by default: connectors declare their own hosts
    budgets:
      period: month                   # for Budgets that do not set one
      onExceed: block
  vault:
    provider: none                    # none | dev | azure; references only, never values
  git:
    auditCommits: true                # commit the audit log and cloned.lock after each apply
"""

BUDGETS_TEMPLATE = """\
# Budgets cap what agents may spend per period. Scope one to the whole workspace, or to a
# connector or pipeline by name. Lowering a limit applies at once; raising one needs approval.
apiVersion: cloned/v1
kind: Budget
metadata:
  name: workspace-monthly
spec:
  description: Overall monthly ceiling for every agent in this workspace.
  scope: {workspace: true}            # or {connector: NAME} or {pipeline: NAME}
  period: month                       # day | week | month
  limits:                             # each optional; at least one
    cost_usd: 25
    tokens: 1000000
    calls: 2000
  onExceed: block                     # block | requireApproval
"""
