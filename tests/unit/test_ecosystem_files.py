"""The files other tools read: pre-commit's hook manifest, the GitHub Actions example, and the
commands docs/gitops.md tells people to type. Each must name real `cloned` commands and options,
checked against the typer app itself (no network, nothing run)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML
from typer._click.exceptions import UsageError

from reconciler.cli.app import app
from tests.conftest import REPO

HOOKS = REPO / ".pre-commit-hooks.yaml"
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
GITOPS = REPO / "docs" / "gitops.md"

OPERATORS = frozenset("();<>|&")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}


def check_command_line(argv: list[str]) -> None:
    """Fail unless `cloned *argv` names a real command and parses with its real options."""
    command: Any = typer.main.get_command(app)
    path = ["cloned"]
    args = list(argv)
    while getattr(command, "commands", None):
        if not args or args[0].startswith("-"):
            pytest.fail(f"`{' '.join(path)}` needs a subcommand")
        name = args.pop(0)
        if name not in command.commands:
            pytest.fail(f"`{' '.join(path)} {name}`: no such command")
        command = command.commands[name]
        path.append(name)
    if {"-h", "--help"} & set(args):
        return
    try:
        command.make_context(" ".join(path), args)
    except UsageError as exc:
        pytest.fail(f"`{shlex.join(['cloned', *argv])}`: {exc.format_message()}")


def invocations(line: str) -> list[list[str]]:
    """The arguments of every `cloned ...` run by one shell line (a command in command
    position: not an argument of another program, a quoted string or a comment)."""
    line = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", line)  # GitHub Actions expressions
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    current: list[str] | None = None
    command_position = True
    for token in lexer:
        if set(token) <= OPERATORS:
            if current is not None and token[0] in "<>" and current and current[-1].isdigit():
                current.pop()  # the 2 of 2>&1
            current = None
            command_position = True
        elif current is not None:
            current.append(token)
        elif command_position:
            if re.fullmatch(r"\w+=.*", token) or token == "$":
                continue  # VAR=value prefixes; `$(`
            if token == "cloned" or token.endswith("/cloned"):
                current = []
                found.append(current)
            command_position = False
    return found


def shell_lines(script: str) -> list[str]:
    """A shell script's logical lines (backslash continuations joined)."""
    return script.replace("\\\n", " ").splitlines()


def markdown_commands(text: str) -> list[list[str]]:
    """Every `cloned` command of a Markdown page: in shell code blocks (for `console` blocks,
    the `$ ` lines only) and in inline code that starts with `cloned `."""
    found: list[list[str]] = []
    for language, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        if language not in SHELL_LANGUAGES:
            continue
        for line in shell_lines(body):
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            found += invocations(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if span.startswith("cloned "):
            found += invocations(span)
    return found


def load_yaml(path: Path) -> Any:
    """YAML 1.2, so GitHub's `on:` stays a string (YAML 1.1 would read it as true)."""
    return YAML(typ="safe").load(path.read_text())


# --- the checker itself -----------------------------------------------------------------------


def test_invocations_find_cloned_in_command_position_only() -> None:
    line = 'cloned plan --base "$BASE" --format markdown > plan.md 2>&1 || echo "cloned failed"'
    assert invocations(line) == [["plan", "--base", "$BASE", "--format", "markdown"]]
    assert invocations("id=$(cloned plan --json | jq -r .plan_id)") == [["plan", "--json"]]
    assert invocations("git commit -m 'cloned apply' && .venv/bin/cloned drift") == [["drift"]]
    assert invocations("echo cloned plan  # cloned apply") == []


def test_the_checker_rejects_what_is_not_there() -> None:
    check_command_line(["approvals", "verify", "--base", "origin/main"])
    for bad in (["plan", "--no-such-flag"], ["no-such-command"], ["approvals"], ["plan", "a", "b"]):
        with pytest.raises(pytest.fail.Exception):
            check_command_line(bad)


# --- pre-commit -------------------------------------------------------------------------------


def test_pre_commit_manifest_is_valid_by_pre_commits_own_schema() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = {hook["id"]: hook for hook in load_manifest(str(HOOKS))}
    assert "cloned-validate" in hooks
    validate = hooks["cloned-validate"]
    assert validate["language"] == "python"
    assert validate["pass_filenames"] is False
    assert validate["entry"] == "cloned validate"


def test_pre_commit_hooks_run_real_commands_on_cloned_files_only() -> None:
    from pre_commit.clientlib import load_manifest

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for hook in load_manifest(str(HOOKS)):
        program, *argv = shlex.split(hook["entry"]) + hook["args"]
        assert program in scripts, f"{hook['id']}: {program} is not a console script of Cloned"
        check_command_line(argv)
        pattern = re.compile(hook["files"])
        assert pattern.search(".cloned/budgets.yaml")
        assert pattern.search(".cloned/policy/overlay.yaml")
        assert not pattern.search("README.md")
        assert not pattern.search("docs/.cloned/x.yaml")


# --- the GitHub Actions example ---------------------------------------------------------------


def workflow_jobs() -> dict[str, Any]:
    jobs: dict[str, Any] = load_yaml(WORKFLOW)["jobs"]
    return jobs


def steps_running(job: dict[str, Any], *argv: str) -> list[dict[str, Any]]:
    """The steps of `job` whose script runs `cloned *argv ...`."""
    return [
        step
        for step in job["steps"]
        if any(
            found[: len(argv)] == list(argv)
            for line in shell_lines(step.get("run", ""))
            for found in invocations(line)
        )
    ]


def test_workflow_triggers_and_least_privilege_permissions() -> None:
    workflow = load_yaml(WORKFLOW)
    assert set(workflow["on"]) == {"pull_request", "push"}
    push = workflow["on"]["push"]
    assert push["branches"] == ["main"]
    # An audit commit pushed back to main must not start another apply.
    assert {"!.cloned/audit/**", "!.cloned/cloned.lock"} <= set(push["paths"])
    assert push["paths"][0] == ".cloned/**", "GitHub applies the patterns in order"
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict), f"{name}: permissions must be listed one by one"
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"pull-requests"}, f"{name} asks for {writes}"


def test_pull_request_job_plans_against_the_base_and_gates_on_approvals() -> None:
    jobs = workflow_jobs()
    [job] = [job for job in jobs.values() if "pull_request" in job.get("if", "")]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "--base needs the base branch's commits"
    assert any(s.get("uses", "").startswith("actions/setup-python@") for s in job["steps"])
    assert steps_running(job, "validate")
    [plan] = steps_running(job, "plan")
    planned = [f for line in shell_lines(plan["run"]) for f in invocations(line)]
    assert planned[0][:2] == ["plan", "--base"] and "markdown" in planned[0]
    [gate] = steps_running(job, "approvals", "verify")
    assert "--base" in gate["run"]
    assert "continue-on-error" not in gate, "the approvals check is the gate"
    comments = [s for s in job["steps"] if s.get("uses", "").startswith("actions/github-script@")]
    assert len(comments) == 1, "one sticky comment, updated in place"


def test_apply_job_runs_where_the_state_database_lives() -> None:
    jobs = workflow_jobs()
    [job] = [job for job in jobs.values() if "push" in job.get("if", "")]
    runs_on = job["runs-on"]
    assert "self-hosted" in (runs_on if isinstance(runs_on, list) else [runs_on])
    assert job["concurrency"]["cancel-in-progress"] is False
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in job["steps"]), (
        "a fresh checkout has no state database (and checkout's clean would delete one)"
    )
    assert steps_running(job, "reconcile") or steps_running(job, "apply")


def test_every_cloned_command_in_the_workflow_is_real() -> None:
    lines = [
        line
        for job in workflow_jobs().values()
        for step in job["steps"]
        for line in shell_lines(step.get("run", ""))
    ]
    found = [argv for line in lines for argv in invocations(line)]
    assert len(found) >= 4
    for argv in found:
        check_command_line(argv)


def test_workflow_actions_are_pinned_to_a_release() -> None:
    for job in workflow_jobs().values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


# --- docs/gitops.md ---------------------------------------------------------------------------


def test_every_cloned_command_in_the_gitops_guide_is_real() -> None:
    found = markdown_commands(GITOPS.read_text())
    assert len(found) >= 20
    for argv in found:
        check_command_line(argv)
    for needed in (
        {"plan", "--base", "markdown"},
        {"approvals", "approve", "--base"},
        {"approvals", "verify", "--base"},
        {"drift"},
        {"reconcile", "--self-heal"},
    ):
        assert any(needed <= set(argv) for argv in found), f"gitops.md never shows {needed}"


def test_gitops_guide_links_resolve_and_the_guide_is_linked() -> None:
    text = GITOPS.read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (GITOPS.parent / target).exists(), f"docs/gitops.md links to missing {target}"
    for page in ("README.md", "docs/quickstart.md", "docs/concepts.md"):
        assert "gitops.md" in (REPO / page).read_text(), f"{page} does not link the guide"
