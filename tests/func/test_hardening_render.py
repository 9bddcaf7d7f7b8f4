"""Security review, issue 8, items 6, 7 and 16: what people and scripts read cannot be forged.

6: keys, names, file names and comments holding control characters or Markdown structure are
shown inert in every text and Markdown renderer. 7: list and mapping changes are shown element by
element, never cut where they differ. 16: with --json, an error is a JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import PUBLIC_KEY, cloned, git, write
from tests.func.engine_helpers import Team, make_team

NOW = {"CLONED_NOW": "2026-03-01T09:30:00Z"}
ANSI_KEY = "x\x1b[2K\rdecision: auto"
FENCE_KEY = "x\n```\n</details>\n| approved |"
RAW = ("\x1b", "\r", "\u202e", "\u200b", "\x9b", "\x7f")

EVIL_BUDGET = """\
---
apiVersion: cloned/v1
kind: Budget
metadata:
  name: evil
  annotations:
    "x\\e[2K\\rdecision: auto": "v\\u202e\\u200b\\x9b\\x7f"
    "x\\n```\\n</details>\\n| approved |": "w"
spec:
  scope: {workspace: true}
  period: day
  limits: {calls: 100}
"""


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    """The team's workspace, applied and committed."""
    made = make_team(repo, tmp_path)
    applied = made.run("apply", "--no-commit", env=NOW)
    assert applied.code == 0, applied.out + applied.err
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "applied", cwd=repo)
    return made


def assert_inert(output: str) -> None:
    for raw in RAW:
        assert raw not in output, f"{raw!r} reached the output"


def add_evil_budget(team: Team) -> None:
    path = team.repo / ".cloned/budgets.yaml"
    path.write_text(path.read_text() + EVIL_BUDGET)


# --- item 6: terminal and Markdown spoofing -------------------------------------------------------


def test_control_characters_in_keys_are_shown_escaped_in_plan_and_show(team: Team) -> None:
    add_evil_budget(team)
    saved = team.repo / "evil.plan"
    for result in (
        team.run("plan"),
        team.run("plan", "--out", str(saved)),
        team.run("show", str(saved)),
    ):
        assert result.code == 0, result.err
        assert_inert(result.out)
        assert '+ metadata.annotations.x\\x1b[2K\\rdecision: auto: "v\\u202e\\u200b\\x9b\\x7f"' in (
            result.out
        )
        assert "+ metadata.annotations.x\\n```\\n</details>\\n| approved |: " in result.out
    # The JSON stays exact: the key is there, as JSON escapes it.
    planned = json.loads(team.run("plan", "--json").out)
    (change,) = [c for c in planned["changes"] if c["address"] == "budget.evil"]
    paths = [d["path"] for d in change["diff"]]
    assert f"metadata.annotations.{ANSI_KEY}" in paths
    assert f"metadata.annotations.{FENCE_KEY}" in paths


def test_a_key_cannot_forge_markdown_structure(team: Team) -> None:
    add_evil_budget(team)
    saved = team.repo / "evil.plan"
    assert team.run("plan", "--out", str(saved)).code == 0
    for result in (
        team.run("plan", "--format", "markdown"),
        team.run("show", str(saved), "--format", "markdown"),
    ):
        assert result.code == 0, result.err
        out = result.out
        assert_inert(out)
        lines = out.splitlines()
        sections = sum(1 for line in lines if line.startswith("<details>"))
        assert sections == 1
        assert lines.count("</details>") == sections
        assert "| approved |" not in lines
        # The diff fence is longer than any run of backticks inside it, so nothing closes it.
        opening = next(line for line in lines if line.endswith("diff") and line.startswith("```"))
        fence = opening.removesuffix("diff")
        assert len(fence) > 3
        body = lines[lines.index(opening) + 1 : lines.index(fence)]
        assert '+ metadata.annotations.x\\n```\\n</details>\\n| approved |: "w"' in body


def test_approvals_show_and_list_escape_the_change(team: Team) -> None:
    team.edit(".cloned/budgets.yaml", "limits: {calls: 100}", "limits: {calls: 200}")
    team.edit(
        ".cloned/budgets.yaml",
        "  name: daily\n",
        '  name: daily\n  annotations: {"x\\e[2K\\rapproved by alice": "v\\u202e"}\n',
    )
    pending = team.run("apply", "--no-commit", env=NOW)
    assert pending.code == 3, pending.out + pending.err
    assert_inert(pending.out)
    (request,) = team.requests()
    shown = team.run("approvals", "show", str(request["id"]))
    assert shown.code == 0, shown.err
    assert_inert(shown.out)
    assert '+ metadata.annotations.x\\x1b[2K\\rapproved by alice: "v\\u202e"' in shown.out
    assert "~ spec.limits.calls: 100 -> 200" in shown.out
    listed = team.run("approvals", "list")
    assert listed.code == 0 and str(request["id"]) in listed.out


def test_validate_errors_escape_file_names_and_yaml_keys(team: Team) -> None:
    write(
        team.repo,
        ".cloned/bad\x1b[2K.yaml",
        "apiVersion: cloned/v1\nkind: Budget\nmetadata: {name: b}\n"
        'spec: {scope: {workspace: true}, "limits\\e[31m\\u202e": {calls: 1}}\n',
    )
    for command in (("validate",), ("plan",), ("policy", "show")):
        result = team.run(*command)
        assert result.code == 1, command
        assert_inert(result.err)
        assert ".cloned/bad\\x1b[2K.yaml:4:" in result.err
    assert "limits\\x1b[31m\\u202e" in team.run("validate").err


def test_audit_log_and_policy_show_escape_what_they_print(team: Team) -> None:
    write(
        team.repo,
        ".cloned/policy/evil.yaml",
        "apiVersion: cloned/v1\nkind: PolicyPack\nmetadata: {name: evil}\nspec:\n"
        '  description: "fine\\e[2K\\rall rules: auto\\u202e"\n  extends: baseline\n'
        '  rules:\n    - name: r\n      description: "d\\x9b\\u200b"\n'
        "      match: {kinds: [Budget]}\n      decision: approval\n"
        "      approvals: {count: 1, groups: [admins]}\n",
    )
    team.edit(".cloned/workspace.yaml", "policyPacks: [baseline]", "policyPacks: [baseline, evil]")
    shown = team.run("policy", "show", "--desired")
    assert shown.code == 0, shown.err
    assert_inert(shown.out)
    # (policy show fills descriptions to the width, so the carriage return became a space)
    assert "fine\\x1b[2K all rules: auto\\u202e" in shown.out
    assert "d\\x9b\\u200b" in shown.out
    add_evil_budget(team)
    applied = team.run("apply", "--no-commit", "--target", "budget.evil", env=NOW)
    assert applied.code in (0, 3), applied.out + applied.err
    for args in ((), ("--long",)):
        log = team.run("audit", "log", *args)
        assert log.code == 0, log.err
        assert_inert(log.out)


def test_drift_escapes_what_a_hand_edited_lock_names(team: Team) -> None:
    lock = team.repo / ".cloned/cloned.lock"
    data = json.loads(lock.read_text())
    entry = dict(data["resources"]["budget.daily"])
    data["resources"]["budget.x\x1b[2K\rno drift\u202e"] = entry
    lock.write_text(json.dumps(data))
    for args in (("drift",), ("plan", "--refresh-only")):
        result = team.run(*args)
        assert_inert(result.out + result.err)
        assert "budget.x\\x1b[2K\\rno drift\\u202e" in result.out + result.err, args


def test_audit_log_prints_one_readable_line_per_event(team: Team) -> None:
    team.edit(
        ".cloned/budgets.yaml",
        "limits: {cost_usd: 50, calls: 1000}",
        "limits: {cost_usd: 40, calls: 1000}",
    )
    assert team.run("apply", "--no-commit", env=NOW).code == 0
    log = team.run("audit", "log", "--type", "change.applied", "--subject", "budget.monthly")
    assert log.code == 0, log.err
    last = log.out.splitlines()[-1]
    assert last.split() == [
        "2026-03-01T09:30:00Z",
        "tester",
        "change.applied",
        "budget.monthly",
        "cost_usd",
        "50.0",
        "->",
        "40.0",
    ]
    started = team.run("audit", "log", "--type", "apply.started").out.splitlines()[-1].split()
    assert started[2] == "apply.started" and len(started[3]) == len("sha256:") + 12
    created = team.run("audit", "log", "--subject", "budget.daily").out.splitlines()[0]
    assert created.endswith("  change.applied  budget.daily  create, 4 fields")
    long = team.run("audit", "log", "--long", "--subject", "budget.monthly")
    assert '"change_hash":"sha256:' in long.out.splitlines()[-1]
    assert long.out.splitlines()[-1].split()[0].isdigit()


# --- item 7: diffs that show what changed --------------------------------------------------------


def test_an_added_approver_is_named_with_all_its_fields(team: Team) -> None:
    dave = f'    - name: dave\n      publicKey: "{PUBLIC_KEY}"\n      groups: [admins]\n'
    team.edit(".cloned/workspace.yaml", "    - name: carol", dave + "    - name: carol")
    out = team.run("plan").out
    assert f'+ spec.approvers[name=dave].publicKey: "{PUBLIC_KEY}"' in out
    assert '+ spec.approvers[name=dave].groups: ["admins"]' in out
    assert "spec.approvers[name=bob]" not in out
    assert "..." not in out


def test_a_changed_key_and_a_reordered_list_are_visible(team: Team) -> None:
    bob = team.keys["bob"]
    team.edit(".cloned/workspace.yaml", f'"{bob}"', f'"{PUBLIC_KEY}"')
    out = team.run("plan").out
    (line,) = [line for line in out.splitlines() if "spec.approvers[name=bob].publicKey" in line]
    before, after = line.split(": ", 1)[1].split(" -> ")
    assert before == f'"{bob}"' and after == f'"{PUBLIC_KEY}"'
    team.edit(".cloned/workspace.yaml", f'"{PUBLIC_KEY}"', f'"{bob}"')
    workspace = team.repo / ".cloned/workspace.yaml"
    text = workspace.read_text()
    a, b, c = (text.index(f"    - name: {who}") for who in ("alice", "bob", "carol"))
    workspace.write_text(text[:a] + text[b:c] + text[a:b] + text[c:])
    out = team.run("plan").out
    assert '~ spec.approvers: order "alice", "bob", "carol" -> "bob", "alice", "carol"' in out


def test_a_later_policy_rule_change_names_the_rule_and_field(team: Team) -> None:
    write(
        team.repo,
        ".cloned/policy/team.yaml",
        "apiVersion: cloned/v1\nkind: PolicyPack\nmetadata: {name: team}\nspec:\n"
        "  extends: baseline\n  rules:\n"
        + "".join(
            f"    - name: rule-{n}\n      description: {'long ' * 20}{n}\n"
            "      match: {kinds: [Budget], actions: [update]}\n"
            "      decision: approval\n      approvals: {count: 1, groups: [admins]}\n"
            for n in range(5)
        ),
    )
    team.edit(".cloned/workspace.yaml", "policyPacks: [baseline]", "policyPacks: [baseline, team]")
    assert team.run("apply", "--no-commit", env=NOW).code in (0, 3)
    pending = team.run("approvals", "list", "--json")
    for request in json.loads(pending.out):
        for who in ("alice", "bob"):
            team.run("approvals", "approve", str(request["id"]), "--key", who, who=who)
    assert team.run("apply", "--no-commit", env=NOW).code == 0, "setup"
    team.edit(
        ".cloned/policy/team.yaml",
        "rule-3\n" + f"      description: {'long ' * 20}3\n"
        "      match: {kinds: [Budget], actions: [update]}\n"
        "      decision: approval\n      approvals: {count: 1,",
        "rule-3\n" + f"      description: {'long ' * 20}3\n"
        "      match: {kinds: [Budget], actions: [update]}\n"
        "      decision: approval\n      approvals: {count: 2,",
    )
    out = team.run("plan").out
    assert "~ spec.rules[name=rule-3].approvals.count: 1 -> 2" in out
    markdown = team.run("plan", "--format", "markdown").out
    assert "~ spec.rules[name=rule-3].approvals.count: 1 -> 2" in markdown


# --- item 16: JSON errors on stdout --------------------------------------------------------------


def error_of(result_out: str) -> dict[str, object]:
    payload = json.loads(result_out)
    assert set(payload) >= {"error", "exit_code", "problems"}
    return payload  # type: ignore[no-any-return]


def test_json_errors_are_json_on_stdout(team: Team) -> None:
    bad_flag = team.run("plan", "--json", "--bogus")
    assert bad_flag.code == 1
    assert error_of(bad_flag.out) == {
        "error": "No such option: --bogus (Possible options: --base, --out)",
        "exit_code": 1,
        "problems": [],
    }
    assert "No such option: --bogus" in bad_flag.err
    for args in (
        ("approvals", "show", "ffffffffffff", "--json"),
        ("audit", "log", "--since", "last tuesday", "--json"),
        ("plan", "--format", "json", "--target", "budget.nope"),
        ("drift", "--json", "--nope"),
        ("apply", "--json", "--lock-timeout", "soon"),
    ):
        result = team.run(*args)
        assert result.code == 1, args
        payload = error_of(result.out)
        assert payload["exit_code"] == 1 and payload["problems"] == [], args
        assert result.err.startswith(("Error: ", "Usage: ")), args


def test_json_validation_errors_list_the_problems(team: Team) -> None:
    team.edit(".cloned/budgets.yaml", "period: day", "period: daily")
    for args in (("plan", "--json"), ("policy", "show", "--json"), ("apply", "--json")):
        result = team.run(*args)
        assert result.code == 1, args
        payload = error_of(result.out)
        assert payload["error"] == "1 problem found"
        (problem,) = payload["problems"]  # type: ignore[misc]
        assert problem["file"] == ".cloned/budgets.yaml" and problem["line"] == 16, args
        assert set(problem) == {"file", "line", "column", "message"}
        assert "spec.period" in result.err
    validated = json.loads(team.run("validate", "--json").out)
    assert (validated["valid"], validated["exit_code"], validated["error"]) == (
        False,
        1,
        "1 problem found",
    )


def test_an_internal_error_is_json_too(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli import main
    from reconciler.engine import preview

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(preview, "preview", broken)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.chdir(workspace)
    monkeypatch.setattr("tempfile.tempdir", str(workspace))
    code = main.run(["plan", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    payload = error_of(captured.out)
    assert str(payload["error"]).startswith("internal error (RuntimeError); this is a bug")
    assert "Error: internal error (RuntimeError)" in captured.err


def test_without_json_an_error_prints_nothing_on_stdout(team: Team) -> None:
    result = team.run("plan", "--bogus")
    assert (result.code, result.out) == (1, "")


def test_the_cli_reference_documents_json_errors() -> None:
    for command in ((), ("plan",), ("validate",), ("apply",)):
        shown = cloned(*command, "--help").out
        assert 'an error too prints one JSON object on stdout:\n  {"error": MESSAGE' in shown
