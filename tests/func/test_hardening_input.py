"""Security review, issue 8 (input hardening): inputs that crashed, garbled or leaked.

Each test drives the real CLI. Bad input must give one `file:line:col: message` line per
problem, exit 1 and write nothing; no input may crash the process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WORKSPACE_YAML, cloned, git, snapshot, write
from tests.func.engine_helpers import MASK_PACK, TOKEN, Team, make_team
from tests.func.test_bad_input import BUDGET, assert_clean_failure, expected_stderr

CLONED_SCRIPT = Path(sys.executable).parent / "cloned"


def run_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script in its own process: a segfault must not take pytest down."""
    return subprocess.run(
        [str(CLONED_SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- item 10: nesting that overflowed the C parser ----------------------------------------

DEEP_INPUTS = {
    "flow-sequences": ("[" * 30_000, ".cloned/deep.yaml:1:66: nesting deeper than 64 levels"),
    "flow-mappings": ("{" * 30_000, ".cloned/deep.yaml:1:66: nesting deeper than 64 levels"),
    "compact-block-sequences": (
        "- " * 100_000,
        ".cloned/deep.yaml:1:131: nesting deeper than 64 levels",
    ),
    "block-indentation": (
        "".join(" " * level + "a:\n" for level in range(1_400)),
        ".cloned/deep.yaml:66:66: nesting deeper than 64 levels",
    ),
}


@pytest.mark.parametrize("name", list(DEEP_INPUTS))
def test_deep_nesting_is_a_located_problem_not_a_segfault(workspace: Path, name: str) -> None:
    text, error = DEEP_INPUTS[name]
    write(workspace, ".cloned/deep.yaml", text)
    before = snapshot(workspace)

    for command in ("validate", "plan"):
        result = run_subprocess(command, cwd=workspace)
        assert result.returncode == 1, (command, result.returncode, result.stderr[-500:])
        assert result.stderr.splitlines()[0] == error
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert snapshot(workspace) == before


def test_a_committed_deep_file_does_not_kill_reconcile(workspace: Path) -> None:
    write(workspace, ".cloned/deep.yaml", "[" * 30_000)
    git("add", "-A", cwd=workspace)
    git("commit", "-qm", "deep", cwd=workspace)

    result = run_subprocess("reconcile", "--once", cwd=workspace)

    assert result.returncode in (0, 1), (result.returncode, result.stderr[-500:])
    assert "nesting deeper than 64 levels" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_nesting_of_64_levels_is_still_fine(workspace: Path) -> None:
    nested = "[" * 63 + "1" + "]" * 63
    write(
        workspace,
        ".cloned/blueprint.yaml",
        "apiVersion: cloned/v1\nkind: Blueprint\nmetadata: {name: bp}\n"
        f"spec: {{source: {{path: bp}}, parameters: {{p: {nested}}}}}\n",
    )
    # Document root, spec, parameters, p, then 63 sequences: the innermost value is at depth 66
    # of the file, which is past the 64 levels a path may have.
    result = cloned("validate", cwd=workspace)
    assert result.code == 1
    assert "nesting deeper than 64 levels" in result.err

    write(
        workspace,
        ".cloned/blueprint.yaml",
        "apiVersion: cloned/v1\nkind: Blueprint\nmetadata: {name: bp}\n"
        f"spec: {{source: {{path: bp}}, parameters: {{p: {'[' * 60}1{']' * 60}}}}}\n",
    )
    assert cloned("validate", cwd=workspace).code == 0


def test_long_alias_chain_and_huge_scalar_are_handled(workspace: Path) -> None:
    chain = "".join(f"    a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 5_000))
    write(
        workspace,
        ".cloned/chain.yaml",
        "apiVersion: cloned/v1\nkind: Blueprint\nmetadata: {name: bp}\nspec:\n"
        f"  source: {{path: bp}}\n  parameters:\n    a0: &a0 [x]\n{chain}",
    )
    result = cloned("validate", cwd=workspace)
    assert_clean_failure(result)
    assert result.err.startswith(
        ".cloned/chain.yaml:68:5: nesting deeper than 64 levels (or a recursive alias)\n"
    )

    os.remove(workspace / ".cloned/chain.yaml")
    write(
        workspace,
        ".cloned/huge.yaml",
        BUDGET.replace("spec:\n", f"spec:\n  x: {'y' * 1_900_000}\n"),
    )
    result = cloned("validate", cwd=workspace)
    assert_clean_failure(result)
    assert result.err.startswith('.cloned/huge.yaml:6:3: spec: unknown field "x"')


# --- item 13: non-finite numbers, symlink loops ---------------------------------------------


@pytest.mark.parametrize("spelling", [".inf", "-.Inf", ".nan", ".NaN", "1e400", "-1e400"])
def test_non_finite_numbers_are_refused_where_they_are(workspace: Path, spelling: str) -> None:
    write(workspace, ".cloned/budget.yaml", BUDGET.replace("cost_usd: 50", f"cost_usd: {spelling}"))
    before = snapshot(workspace)

    for command in ("validate", "plan"):
        result = cloned(command, cwd=workspace)
        assert_clean_failure(result)
        assert result.err.splitlines()[0] == (
            ".cloned/budget.yaml:10:15: numbers must be finite: .inf, .nan and values beyond "
            "1.8e308 are not allowed"
        )
    assert snapshot(workspace) == before


def test_non_finite_numbers_in_free_form_values_are_refused(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/run.yaml",
        "apiVersion: cloned/v1\nkind: Blueprint\nmetadata: {name: bp}\nspec:\n"
        "  source: {path: bp}\n  parameters:\n    limits: [1, 2.5, .inf]\n",
    )
    result = cloned("validate", cwd=workspace)
    assert_clean_failure(result)
    assert result.err == expected_stderr(
        [
            ".cloned/run.yaml:7:22: numbers must be finite: .inf, .nan and values beyond "
            "1.8e308 are not allowed"
        ]
    )


def test_symlink_loop_under_cloned_is_a_clear_error(workspace: Path) -> None:
    os.symlink("b.yaml", workspace / ".cloned/a.yaml")
    os.symlink("a.yaml", workspace / ".cloned/b.yaml")
    (workspace / ".cloned/sub").mkdir()
    os.symlink("loop", workspace / ".cloned/sub/loop")
    os.symlink("loop", workspace / ".cloned/sub/self.yaml")
    before = snapshot(workspace)

    for command in ("validate", "plan"):
        result = cloned(command, cwd=workspace)
        assert_clean_failure(result)
        assert result.err == expected_stderr(
            [
                ".cloned/a.yaml:1:1: symlink loop: too many levels of symbolic links",
                ".cloned/b.yaml:1:1: symlink loop: too many levels of symbolic links",
                ".cloned/sub/loop:1:1: symlink loop: too many levels of symbolic links",
                ".cloned/sub/self.yaml:1:1: symlink loop: too many levels of symbolic links",
            ]
        )
    assert snapshot(workspace) == before


# --- item 12: redaction patterns that garble or hang ----------------------------------------

BAD_PATTERNS_PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata:
  name: house
spec:
  redaction:
    - {name: empty, regex: "z*"}
    - {name: boundary, regex: '\\b'}
    - {name: nested, regex: "(a+)+"}
    - {name: alternatives, regex: "(a|a)+x"}
    - {name: broken, regex: "sk-("}
    - {name: fine, regex: "sk-live-[A-Za-z0-9]{16}"}
  rules:
    - name: slow-where
      match:
        where: [{field: spec.description, matches: "(x+x+)+y"}]
      decision: deny
"""

COMPILE = "regex does not compile: missing ), unterminated subpattern at position 3"
EMPTY = "regex matches the empty string; it would mask between every character"
SLOW = (
    "can backtrack exponentially (a repeated group that holds another repeat, or "
    "alternatives that can start alike); rewrite it without nested quantifiers"
)


def test_redaction_patterns_that_match_empty_or_backtrack_are_refused(workspace: Path) -> None:
    write(
        workspace,
        ".cloned/workspace.yaml",
        WORKSPACE_YAML.replace("policyPacks: [baseline]", "policyPacks: [baseline, house]"),
    )
    write(workspace, ".cloned/house.yaml", BAD_PATTERNS_PACK)
    before = snapshot(workspace)

    for command in ("validate", "plan"):
        result = cloned(command, cwd=workspace)
        assert_clean_failure(result)
        assert result.err == expected_stderr(
            [
                f".cloned/house.yaml:7:21: spec.redaction[0].regex: {EMPTY}",
                f".cloned/house.yaml:8:24: spec.redaction[1].regex: {EMPTY}",
                f".cloned/house.yaml:9:22: spec.redaction[2].regex: regex {SLOW}",
                f".cloned/house.yaml:10:28: spec.redaction[3].regex: regex {SLOW}",
                f".cloned/house.yaml:11:22: spec.redaction[4].regex: {COMPILE}",
                f".cloned/house.yaml:16:43: spec.rules[0].match.where[0].matches: matches {SLOW}",
            ]
        )
    assert snapshot(workspace) == before


POLYNOMIAL = (
    "regex can backtrack polynomially (repeats of the same characters side by side, like "
    "a*a*b); merge them into one repeat"
)


def test_side_by_side_repeats_that_hang_the_redactor_are_refused(workspace: Path) -> None:
    # Found by an attacker review: a*a*a*a*a*a*b passed the nesting check and took 44 s to
    # mask 100 characters, so one pull request could hang validate in CI.
    pack = BAD_PATTERNS_PACK.split("  redaction:")[0] + (
        "  redaction:\n"
        '    - {name: slow, regex: "a*a*a*a*a*a*b"}\n'
        '    - {name: words, regex: "\\\\w+\\\\w*@"}\n'
        '    - {name: fine, regex: "Bearer\\\\s+[A-Za-z0-9._~+/-]+=*"}\n'
    )
    write(
        workspace,
        ".cloned/workspace.yaml",
        WORKSPACE_YAML.replace("policyPacks: [baseline]", "policyPacks: [baseline, house]"),
    )
    write(workspace, ".cloned/house.yaml", pack)
    write(
        workspace,
        ".cloned/long.yaml",
        BUDGET.replace("period: month", "period: month\n  " + "a" * 120 + ": 1"),
    )
    result = cloned("validate", cwd=workspace)
    assert_clean_failure(result)
    assert f".cloned/house.yaml:7:20: spec.redaction[0].regex: {POLYNOMIAL}" in result.err
    assert f".cloned/house.yaml:8:21: spec.redaction[1].regex: {POLYNOMIAL}" in result.err
    assert "spec.redaction[2]" not in result.err


def test_the_redactor_itself_skips_unsafe_patterns() -> None:
    from reconciler.redact import Redactor

    redactor = Redactor(["z*", "(a+)+", "(", "sk-[a-z]{4}"])

    assert redactor.text("plain text sk-abcd") == "plain text [REDACTED]"


# --- item 8: budgets and connectors loosened without approval -------------------------------

UNUSED_PIPELINE = """\
apiVersion: cloned/v1
kind: Pipeline
metadata:
  name: unused
spec:
  steps:
    - name: only
      skill: research.summarize
      with: {topic: nothing, sources: [none]}
---
apiVersion: cloned/v1
kind: Model
metadata: {name: default}
spec: {api: openai-chat, baseUrl: "http://127.0.0.1:8000/v1", model: local}
"""


def plan_decisions(team: Team) -> dict[str, str]:
    """address -> decision, as `plan --json` reports them."""
    result = team.run("plan", "--json")
    assert result.code in (0, 2), result.err
    return {change["address"]: change["decision"] for change in json.loads(result.out)["changes"]}


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> Team:
    made = make_team(repo, tmp_path)
    write(repo, ".cloned/pipeline.yaml", UNUSED_PIPELINE)
    assert made.run("apply").code == 0
    return made


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("scope: {workspace: true}\n  period: month", "scope: {pipeline: unused}\n  period: month"),
        ("period: month", "period: week"),
        ("period: month", "period: month\n  onExceed: requireApproval"),
        ("limits: {cost_usd: 50, calls: 1000}", "limits: {cost_usd: 50}"),
    ],
    ids=["scope", "period", "on-exceed", "limit-removed"],
)
def test_budget_changes_that_do_not_tighten_need_approval(team: Team, old: str, new: str) -> None:
    team.edit(".cloned/budgets.yaml", old, new)
    assert plan_decisions(team) == {"budget.monthly": "approval"}
    applied = team.run("apply")
    assert applied.code == 3, applied.out + applied.err
    assert "budget.monthly (update) awaiting approval: baseline/budget-raise" in applied.out


def test_budget_changes_that_tighten_apply_automatically(team: Team) -> None:
    team.edit(
        ".cloned/budgets.yaml",
        "limits: {cost_usd: 50, calls: 1000}",
        "limits: {cost_usd: 40, calls: 1000, tokens: 5}\n  onExceed: block",
    )
    assert plan_decisions(team) == {"budget.monthly": "auto"}
    assert team.run("apply").code == 0


# What the Connector and Pipeline rules decide is covered in tests/unit/test_policy.py.


def test_secret_users_widened_need_approval(team: Team) -> None:
    write(
        team.repo,
        ".cloned/secret.yaml",
        "apiVersion: cloned/v1\nkind: SecretRef\nmetadata: {name: tok}\nspec:\n  ref: vault://tok\n",
    )
    assert team.run("apply").code == 0
    team.edit(
        ".cloned/secret.yaml",
        "ref: vault://tok\n",
        "ref: vault://tok\n  usedBy: {pipelines: [unused]}\n",
    )
    assert plan_decisions(team) == {"secretref.tok": "approval"}


# --- item 9: secrets where redaction did not reach; private state files --------------------


def masked_team(repo: Path, tmp_path: Path) -> Team:
    made = make_team(repo, tmp_path, packs="[baseline, masks]")
    write(repo, ".cloned/masks.yaml", MASK_PACK)
    return made


def test_validate_masks_a_secret_a_problem_message_quotes(repo: Path, tmp_path: Path) -> None:
    team = masked_team(repo, tmp_path)
    write(
        repo,
        ".cloned/secret.yaml",
        f"apiVersion: cloned/v1\nkind: SecretRef\nmetadata: {{name: tok}}\nspec:\n  ref: {TOKEN}\n",
    )
    text, as_json = team.run("validate"), team.run("validate", "--json")

    assert text.code == as_json.code == 1
    assert text.err.startswith('.cloned/secret.yaml:5:8: spec.ref: "[REDACTED]" is not valid')
    problem = json.loads(as_json.out)["problems"][0]
    assert problem["message"].startswith('spec.ref: "[REDACTED]" is not valid')
    for result in (text, as_json, team.run("plan")):
        assert TOKEN not in result.out + result.err


def test_the_validation_cache_never_holds_a_redacted_value(repo: Path, tmp_path: Path) -> None:
    team = masked_team(repo, tmp_path)
    team.edit(".cloned/budgets.yaml", "period: day", f'period: day\n  description: "key {TOKEN}"')
    assert team.run("validate").code == 0
    assert team.run("validate").code == 0

    cache = repo / ".cloned/state/cache/resources.json"
    assert cache.is_file()
    assert "masks" in cache.read_text()  # the other files are cached
    assert TOKEN not in cache.read_text()


def test_the_cache_keeps_out_what_the_applied_policy_masks(repo: Path, tmp_path: Path) -> None:
    # Found by an attacker review: a branch that drops the pattern from the overlay and adds the
    # secret in the same change got it into the cache, which honoured only the desired packs.
    team = masked_team(repo, tmp_path)
    assert team.run("apply", "--no-commit").code == 0
    team.edit(
        ".cloned/masks.yaml",
        '  redaction:\n    - {name: live-keys, regex: "sk-live-[A-Za-z0-9]{16}"}\n',
        "",
    )
    team.edit(".cloned/budgets.yaml", "period: day", f'period: day\n  description: "key {TOKEN}"')
    planned = team.run("plan")
    assert TOKEN not in planned.out + planned.err
    cache = repo / ".cloned/state/cache/resources.json"
    assert cache.is_file() and "Workspace" in cache.read_text()
    assert TOKEN not in cache.read_text()


def test_approval_comments_and_request_summaries_are_redacted(repo: Path, tmp_path: Path) -> None:
    team = masked_team(repo, tmp_path)
    assert team.run("apply").code == 0
    team.edit(
        ".cloned/budgets.yaml",
        "limits: {calls: 100}",
        f'limits: {{calls: 200}}\n  description: "key {TOKEN}"',
    )
    assert team.run("apply").code == 3
    (request,) = team.requests()

    approved = team.run(
        "approvals", "approve", str(request["id"]), "--key", "alice",
        "--comment", f"ok, rotated {TOKEN}", who="alice",
    )  # fmt: skip

    assert approved.code == 0, approved.err
    record = repo / ".cloned" / "approvals" / str(request["id"]) / "alice.json"
    assert json.loads(record.read_text())["comment"] == "ok, rotated [REDACTED]"
    assert team.run("approvals", "verify").code == 0
    assert team.run("apply").code == 0
    with sqlite3.connect(repo / ".cloned/state/cloned.db") as db:
        changes = [row[0] for row in db.execute("SELECT change FROM approval_requests")]
        payloads = [row[0] for row in db.execute("SELECT payload FROM audit_events")]
    assert changes and all(TOKEN not in change for change in changes)
    assert any("[REDACTED]" in change for change in changes)
    assert all(TOKEN not in payload for payload in payloads)


def test_every_state_file_is_private(repo: Path, tmp_path: Path) -> None:
    team = make_team(repo, tmp_path)
    assert team.run("validate").code == 0
    assert team.run("apply").code == 0
    assert team.run("reconcile", "--once").code in (0, 1)

    state = repo / ".cloned" / "state"
    found = {path.name: path for path in [state, *state.rglob("*")]}
    assert {"cloned.db", "audit-key", "resources.json", ".gitignore"} <= set(found)
    for path in found.values():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_the_database_write_ahead_files_are_private(workspace: Path) -> None:
    from reconciler.state.db import StateDB

    db = StateDB.open(workspace)
    assert db is not None
    try:
        with db.transaction() as connection:
            connection.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        companions = [db.path.with_name(db.path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(path.exists() for path in companions)
        for path in (db.path, *companions):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        db.close()


def test_an_older_state_folder_is_narrowed(workspace: Path) -> None:
    # A state folder and database as an older Cloned left them: world-readable. (An empty
    # cloned.db would not do: that is a damaged database, refused.)
    assert cloned("apply", "--no-commit", cwd=workspace).code == 0
    state = workspace / ".cloned" / "state"
    os.chmod(state, 0o755)
    os.chmod(state / "cloned.db", 0o644)
    assert cloned("apply", "--no-commit", cwd=workspace).code == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "cloned.db").stat().st_mode) == 0o600


def test_a_problem_quoting_a_multi_line_value_stays_one_line(workspace: Path) -> None:
    # Found by the fuzz test: a quoted value with a line break (or U+2028, which splitlines
    # also breaks at) split one problem over several lines, the later ones without a location.
    write(
        workspace,
        ".cloned/x.yaml",
        'apiVersion: cloned/v1\nkind: |\n  a\n  b\nmetadata: {name: "x\\u2028y"}\nspec: {}\n',
    )
    result = cloned("validate", cwd=workspace)
    assert_clean_failure(result)
    assert result.err == expected_stderr(
        [
            '.cloned/x.yaml:2:7: unknown kind "a\\nb\\n"; kinds: Workspace, PolicyPack, Budget, '
            "Registry, Connector, SecretRef, Model, Blueprint, Pipeline, Run"
        ]
    )
    write(workspace, ".cloned/x.yaml", BUDGET.replace("name: monthly", 'name: "x\\u2028y"'))
    result = cloned("validate", "--json", cwd=workspace)
    (problem,) = json.loads(result.out)["problems"]
    assert problem["message"].startswith('metadata.name: "x\\u2028y" is not valid')


@pytest.mark.parametrize("text", ["[" * 5_000, '{"a":' * 5_000, '{"format_version": NaN}'])
def test_deep_or_non_finite_json_in_committed_files_is_a_clear_error(
    workspace: Path, text: str
) -> None:
    # Found by the fuzz test: json.loads raised RecursionError on a deep approval record.
    record = workspace / ".cloned/approvals/aaaaaaaaaaaa/alice.json"
    write(workspace, str(record.relative_to(workspace)), text)
    verified = cloned("approvals", "verify", cwd=workspace)
    assert verified.code == 1, verified.err
    assert ".cloned/approvals/aaaaaaaaaaaa/alice.json: not a valid approval record" in (
        verified.out + verified.err
    )
    assert "Traceback" not in verified.err and "internal error" not in verified.err
    record.unlink()

    write(workspace, ".cloned/cloned.lock", text)
    planned = cloned("plan", cwd=workspace)
    assert_clean_failure(planned)
    assert planned.err.startswith("Error: .cloned/cloned.lock: not a valid lock file (")
