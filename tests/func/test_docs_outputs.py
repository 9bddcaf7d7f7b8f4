"""The outputs the quickstart and concepts pages show are what the CLI prints.

The quickstart's story is run for real (init, plan, apply, a raise that needs approval, approve,
apply, a stale plan, the audit log), and every `$ cloned ...` line of the pages' `console`
blocks is compared with what that command printed at that point of the story. Only what differs
from run to run is normalised: ids and hashes, keys, times and the repository's path.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Result, cloned, git

PAGES = ("docs/quickstart.md", "docs/concepts.md")
SHOWN_ROOT = "/home/you/my-agents"
YOU = {"USER": "you", "LOGNAME": "you", "GIT_AUTHOR_NAME": "you", "GIT_COMMITTER_NAME": "you"}
VARIABLE = [
    (re.compile(r"ssh-ed25519 [A-Za-z0-9+/=]{68}"), "ssh-ed25519 <key>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hash>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
]


def normalise(text: str) -> str:
    for pattern, replacement in VARIABLE:
        text = pattern.sub(replacement, text)
    return text.strip("\n")


def console_blocks(page: str) -> Iterator[tuple[str, str]]:
    """Each `$ command` of the page's console blocks, with the output shown under it."""
    text = (REPO / page).read_text()
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        parts = re.split(r"^\$ (.*)$", block, flags=re.M)
        yield from zip(parts[1::2], parts[2::2], strict=True)


class Story:
    """The quickstart, run step by step; what each command printed, in order."""

    def __init__(self, tmp_path: Path) -> None:
        self.printed: dict[str, list[str]] = {}
        assert self.run("init", "my-agents", cwd=tmp_path).code == 0
        self.root = tmp_path / "my-agents"
        git("add", "-A", cwd=self.root)
        git("commit", "-q", "-m", "Start a Cloned workspace", cwd=self.root)

    def run(self, *args: str, cwd: Path | None = None) -> Result:
        result = cloned(*args, cwd=cwd or self.root, env=YOU)
        shown = result.out + result.err
        if hasattr(self, "root"):
            shown = shown.replace(str(self.root), SHOWN_ROOT)
        self.printed.setdefault(shlex.join(("cloned", *args)), []).append(shown)
        return result

    def tell(self) -> None:
        self.run("validate")
        budgets = self.root / ".cloned/budgets.yaml"
        good = budgets.read_text()
        mistake = good.replace("period: month", "period: weekly").replace(
            "calls: 2000", 'calls: "500"'
        )
        budgets.write_text(mistake)
        self.run("validate")
        budgets.write_text(good)
        self.run("plan")
        self.run("apply")
        budgets.write_text(good.replace("cost_usd: 25", "cost_usd: 40"))
        self.run("plan")
        self.run("plan", "--out", "raise.plan")
        self.run("apply", "raise.plan")
        self.run("approvals", "list")
        listed = self.printed["cloned approvals list"][0]
        request = re.search(r"^([0-9a-f]{12}) ", listed, re.M)
        assert request is not None
        rid = request.group(1)
        self.run("approvals", "show", rid)
        self.run("approvals", "approve", rid, "--key", "you", "--comment", "Q4 research push")
        self.run("approvals", "verify")
        self.run("apply", "raise.plan")
        self.run("apply", "raise.plan")
        self.run("audit", "log", "--type", "approval.granted")
        self.run("audit", "log", "--type", "approval.granted", "--long")
        self.run("audit", "verify")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    told = Story(tmp_path_factory.mktemp("story"))
    told.tell()
    return told


def command_key(command: str) -> str:
    """A command line with its request or plan ids left out (they differ from run to run)."""
    return re.sub(r"\b[0-9a-f]{12}\b", "ID", shlex.join(shlex.split(command)))


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_show_what_the_cli_prints(page: str, story: Story) -> None:
    printed: dict[str, list[str]] = {}
    for command, outputs in story.printed.items():
        printed.setdefault(command_key(command), []).extend(normalise(o) for o in outputs)
    shown = list(console_blocks(page))
    assert shown, f"{page} has no console blocks"
    for command, expected in shown:
        found = printed.get(command_key(command))
        assert found, f"{page}: `{command}` is not part of the quickstart story"
        assert normalise(expected) in found, (
            f"{page}: `{command}` prints otherwise now:\n" + "\n---\n".join(found)
        )


def test_the_plan_pages_show_the_approvals_line(story: Story) -> None:
    gated = [o for o in story.printed["cloned plan"] if "decision: approval" in o]
    assert gated and all("      approvals: request " in o for o in gated)
    for page in PAGES:
        assert "      approvals: request " in (REPO / page).read_text(), page
