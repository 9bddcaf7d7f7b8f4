"""A governed workspace for engine tests: three people with their own key folders.

alice and bob are admins, carol is only a viewer; the operator who runs apply has no approver
key, so changes are authored by "tester" (the test user) unless a test says otherwise.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Result, cloned, cloned_process, commit_all, git, write

PEOPLE = {"alice": ["admins"], "bob": ["admins"], "carol": ["viewers"]}


@dataclass
class Team:
    repo: Path
    homes: dict[str, Path]
    keys: dict[str, str]

    def run(
        self,
        *args: str,
        who: str = "operator",
        env: dict[str, str] | None = None,
        process: bool = False,
    ) -> Result:
        """`cloned ARGS` as one of the people (their CLONED_HOME), in the repository; in a real
        subprocess with `process`."""
        runner = cloned_process if process else cloned
        return runner(
            *args, cwd=self.repo, env={"CLONED_HOME": str(self.homes[who]), **(env or {})}
        )

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.repo / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new))

    def requests(self, *extra: str) -> list[dict[str, object]]:
        listed = self.run("approvals", "list", "--json", *extra)
        assert listed.code == 0, listed.err
        return json.loads(listed.out)  # type: ignore[no-any-return]


def workspace_yaml(keys: dict[str, str], packs: str = "[baseline]") -> str:
    approvers = "".join(
        f'    - name: {name}\n      publicKey: "{keys[name]}"\n'
        f"      groups: [{', '.join(groups)}]\n"
        for name, groups in PEOPLE.items()
    )
    return (
        "apiVersion: cloned/v1\nkind: Workspace\nmetadata:\n  name: team\nspec:\n"
        f"  policyPacks: {packs}\n  approvers:\n{approvers}"
    )


BUDGETS = """\
apiVersion: cloned/v1
kind: Budget
metadata:
  name: monthly
spec:
  scope: {workspace: true}
  period: month
  limits: {cost_usd: 50, calls: 1000}
---
apiVersion: cloned/v1
kind: Budget
metadata:
  name: daily
spec:
  scope: {workspace: true}
  period: day
  limits: {calls: 100}
"""


def make_team(root: Path, tmp_path: Path, packs: str = "[baseline]") -> Team:
    """A repository with the team's Workspace and two budgets, and everyone's keys."""
    homes = {name: tmp_path / f"home-{name}" for name in [*PEOPLE, "operator"]}
    keys = {}
    for name in PEOPLE:
        result = cloned("keys", "generate", name, env={"CLONED_HOME": str(homes[name])})
        assert result.code == 0, result.err
        keys[name] = result.out.strip()
    homes["operator"].mkdir()
    write(root, ".cloned/workspace.yaml", workspace_yaml(keys, packs))
    write(root, ".cloned/budgets.yaml", BUDGETS)
    return Team(root, homes, keys)


TOKEN = "sk-live-Q7ZK2M9XW4PA8RJD"
"""A secret that the `masks` pack below redacts wherever it appears."""

MASK_PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: masks}
spec:
  extends: baseline
  redaction:
    - {name: live-keys, regex: "sk-live-[A-Za-z0-9]{16}"}
"""


_APPLIED: list[tuple[Path, Team]] = []


def applied_team(root: Path, tmp_path: Path) -> Team:
    """A team workspace, committed and applied (so the branch carries an audit commit).
    Applied once per test process and copied (repository and everyone's homes, the layout
    `make_team` gives): the keys and the apply are most of a test's setup."""
    assert root == tmp_path / "repo", "the copy keeps the layout of the `repo` fixture"
    if not _APPLIED:
        base = Path(tempfile.mkdtemp(prefix="cloned-team-"))
        atexit.register(shutil.rmtree, base, True)
        (base / "repo").mkdir()
        git("init", "-q", "-b", "main", cwd=base / "repo")
        built = make_team(base / "repo", base)
        write(base / "repo", ".gitignore", ".cloned/state/\n")
        commit_all(base / "repo", "Team workspace")
        applied = built.run("apply")
        assert applied.code == 0, applied.err
        _APPLIED.append((base, built))
    base, built = _APPLIED[0]
    shutil.rmtree(root)
    shutil.copytree(base, tmp_path, symlinks=True, dirs_exist_ok=True)
    homes = {who: tmp_path / home.relative_to(base) for who, home in built.homes.items()}
    return Team(root, homes, dict(built.keys))
