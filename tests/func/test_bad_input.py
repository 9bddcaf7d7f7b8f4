"""`cloned validate` on bad input: every case is rejected with exit 1, with the exact
`path:line:col: message` lines on stderr, no traceback, and nothing written to the repository.

Each case writes files into a temporary git repository (`workspace` has a valid Workspace,
`repo` has none) and runs the real CLI. Lines and columns are 1-based; paths are relative to
the folder `cloned` runs in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PUBLIC_KEY, WORKSPACE_YAML, Result, cloned, snapshot, write

MAX_FILE_BYTES = 2 * 1024 * 1024
KINDS = (
    "Workspace, PolicyPack, Budget, Registry, Connector, SecretRef, Model, Blueprint, Pipeline, Run"
)

BUDGET = """\
apiVersion: cloned/v1
kind: Budget
metadata:
  name: monthly
spec:
  scope:
    workspace: true
  period: month
  limits:
    cost_usd: 50
"""

CONNECTOR = """\
apiVersion: cloned/v1
kind: Connector
metadata:
  name: github
spec:
  source:
    path: connectors/github
  version: 1.0.0
  publisher: acme
  secrets: [github-token]
"""

SECRET = """\
apiVersion: cloned/v1
kind: SecretRef
metadata:
  name: github-token
spec:
  ref: vault://github-token
"""

PIPELINE = """\
apiVersion: cloned/v1
kind: Pipeline
metadata:
  name: triage
spec:
  inputs:
    repo:
      type: string
      required: true
  steps:
    - name: fetch
      skill: github.fetch
"""

# The pipeline's one step names a skill no pack ships: every case that includes it says so too.
UNKNOWN_SKILL = '.cloned/pipeline.yaml:12:7: spec.steps[0].skill: no shipped skill "github.fetch"'

RUN = """\
apiVersion: cloned/v1
kind: Run
metadata:
  name: nightly
spec:
  pipeline: triage
  inputs:
    repo: acme/app
"""

BLUEPRINT_HEAD = """\
apiVersion: cloned/v1
kind: Blueprint
metadata:
  name: lol
spec:
  source:
    builtin: lol
  parameters:
"""

# Nine levels of nine aliases: about 390 million strings once expanded. The count passes
# 100,000 inside `f` (line 14): the first eight lines expand to about 75,000 values.
BILLION_LAUGHS = BLUEPRINT_HEAD + "".join(
    f"    {name}: &{name} [{', '.join([item] * 9)}]\n"
    for name, item in zip("abcdefghi", ['"lol"', *(f"*{n}" for n in "abcdefgh")], strict=True)
)

RECURSIVE_ALIAS = BLUEPRINT_HEAD + "    self: &loop\n      again: *loop\n"


def edit(text: str, old: str, new: str) -> str:
    """`text` with its one occurrence of `old` replaced (fails loudly if `old` is missing)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


@dataclass(frozen=True)
class Symlink:
    """A symlink to `target` (relative to the link's folder); `content` is written there first."""

    target: str
    content: str | None = None


Content = str | bytes | Symlink


@dataclass(frozen=True)
class Case:
    """Files to add to the repository, and the problem lines `cloned validate` must print."""

    id: str
    files: dict[str, Content]
    errors: tuple[str, ...]
    fixture: str = "workspace"  # or "repo": no .cloned/workspace.yaml


def place(root: Path, files: dict[str, Content]) -> None:
    """Write `files` under `root`: text, raw bytes, or symlinks."""
    for rel, content in files.items():
        if isinstance(content, Symlink):
            link = root / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if content.content is not None:
                target = link.parent / content.target
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content.content)
            os.symlink(content.target, link)
        else:
            write(root, rel, content)


def expected_stderr(errors: tuple[str, ...] | list[str]) -> str:
    """The problem lines, then the summary line, exactly as `cloned validate` prints them."""
    count = len(errors)
    summary = f"Error: {count} problem{'s' if count != 1 else ''} found; nothing was written"
    return "".join(f"{line}\n" for line in (*errors, summary))


def assert_clean_failure(result: Result) -> None:
    """Exit 1, and no sign of a crash anywhere in the output."""
    assert result.code == 1, (result.code, result.out, result.err)
    for stream in (result.out, result.err):
        assert "Traceback" not in stream
        assert "internal error" not in stream


CASES = [
    # --- YAML syntax and encoding ---------------------------------------------------------
    Case(
        "yaml-syntax-error",
        {".cloned/budgets.yaml": edit(BUDGET, "name: monthly", "name: monthly: extra")},
        (
            ".cloned/budgets.yaml:4:16: "
            "invalid YAML: mapping values are not allowed in this context",
        ),
    ),
    Case(
        "yaml-unclosed-flow-sequence",
        {".cloned/budgets.yaml": edit(BUDGET, "name: monthly", "name: [monthly")},
        (".cloned/budgets.yaml:5:5: invalid YAML: did not find expected ',' or ']'",),
    ),
    Case(
        "tab-indentation",
        {".cloned/budgets.yaml": edit(BUDGET, "    workspace: true", "  \tworkspace: true")},
        (".cloned/budgets.yaml:7:3: tab character in indentation; YAML needs spaces",),
    ),
    Case(
        "duplicate-key",
        {
            ".cloned/budgets.yaml": edit(
                BUDGET, "  period: month\n", "  period: month\n  period: week\n"
            )
        },
        ('.cloned/budgets.yaml:9:3: duplicate key "period"',),
    ),
    Case(
        "non-utf8-latin1-byte",
        {
            ".cloned/budgets.yaml": edit(
                BUDGET, "spec:\n", "spec:\n  description: caf\xe9\n"
            ).encode("latin-1")
        },
        (".cloned/budgets.yaml:6:19: file is not UTF-8 (byte 0xe9)",),
    ),
    Case(
        "control-character-nul",
        {".cloned/budgets.yaml": edit(BUDGET, "name: monthly", "name: month\x00ly")},
        (".cloned/budgets.yaml:4:14: control character U+0000 is not allowed in YAML",),
    ),
    Case(
        "oversized-file",
        {".cloned/big.yaml": b"#" * (MAX_FILE_BYTES + 1)},
        (".cloned/big.yaml:1:1: file is 2,097,153 bytes; resource files are limited to 2,097,152",),
    ),
    # --- Files and symlinks ---------------------------------------------------------------
    Case(
        "symlink-outside-repository",
        {".cloned/outside.yaml": Symlink("../../outside.yaml", BUDGET)},
        (".cloned/outside.yaml:1:1: symlink points outside the repository (../../outside.yaml)",),
    ),
    Case(
        "dangling-symlink",
        {".cloned/budgets.yaml": Symlink("missing.yaml")},
        (".cloned/budgets.yaml:1:1: not a regular file (a broken symlink, a pipe or a device)",),
    ),
    # --- Unsafe or non-plain YAML ---------------------------------------------------------
    Case(
        "billion-laughs",
        {".cloned/bomb.yaml": BILLION_LAUGHS},
        (
            ".cloned/bomb.yaml:14:5: document expands to more than 100,000 values "
            "(an alias/anchor expansion bomb?)",
        ),
    ),
    Case(
        "recursive-alias",
        {".cloned/loop.yaml": RECURSIVE_ALIAS},
        (".cloned/loop.yaml:10:7: nesting deeper than 64 levels (or a recursive alias)",),
    ),
    Case(
        "python-object-tag",
        {
            ".cloned/budgets.yaml": edit(
                BUDGET, "period: month", 'period: !!python/object/apply:os.system ["touch pwned"]'
            )
        },
        (
            ".cloned/budgets.yaml:8:11: YAML tag !!python/object/apply:os.system is not allowed: "
            "resources hold plain data only",
        ),
    ),
    Case(
        "custom-tag",
        {".cloned/budgets.yaml": edit(BUDGET, "period: month", "period: !foo month")},
        (
            ".cloned/budgets.yaml:8:11: YAML tag !foo is not allowed: "
            "resources hold plain data only",
        ),
    ),
    Case(
        "unquoted-date",
        {".cloned/budgets.yaml": edit(BUDGET, "spec:\n", "spec:\n  description: 2024-01-31\n")},
        (
            ".cloned/budgets.yaml:6:16: a value of type date is not plain data "
            "(dates, binary and sets are not allowed; quote the value)",
        ),
    ),
    Case(
        "non-string-mapping-key",
        {".cloned/blueprint.yaml": BLUEPRINT_HEAD + "    retries: 3\n    1: one\n"},
        (".cloned/blueprint.yaml:10:5: mapping key 1 is not a string; quote it",),
    ),
    Case(
        "boolean-mapping-key",
        {".cloned/budgets.yaml": edit(BUDGET, "  period: month", "  true: month")},
        (".cloned/budgets.yaml:8:3: mapping key true is not a string; quote it",),
    ),
    # --- Documents and envelope -----------------------------------------------------------
    Case(
        "document-is-a-list",
        {".cloned/budgets.yaml": "- apiVersion: cloned/v1\n  kind: Budget\n"},
        (".cloned/budgets.yaml:1:1: a resource must be a mapping, got a list",),
    ),
    Case(
        "missing-apiversion",
        {".cloned/budgets.yaml": edit(BUDGET, "apiVersion: cloned/v1\n", "")},
        ('.cloned/budgets.yaml:1:1: missing required field "apiVersion" (use cloned/v1)',),
    ),
    Case(
        "wrong-apiversion",
        {".cloned/budgets.yaml": edit(BUDGET, "cloned/v1", "cloned/v2")},
        (
            '.cloned/budgets.yaml:1:13: unsupported apiVersion "cloned/v2": '
            "this Cloned reads cloned/v1",
        ),
    ),
    Case(
        "missing-kind",
        {".cloned/budgets.yaml": edit(BUDGET, "kind: Budget\n", "")},
        (f'.cloned/budgets.yaml:1:1: missing required field "kind" (one of: {KINDS})',),
    ),
    Case(
        "unknown-kind-did-you-mean",
        {".cloned/budgets.yaml": edit(BUDGET, "kind: Budget", "kind: budget")},
        (
            '.cloned/budgets.yaml:2:7: unknown kind "budget" (did you mean "Budget"?); '
            f"kinds: {KINDS}",
        ),
    ),
    Case(
        "multi-document-error-in-second",
        {".cloned/all.yaml": SECRET + "---\n" + edit(BUDGET, "period: month", "period: fortnight")},
        (
            '.cloned/all.yaml:15:11: spec.period: "fortnight" is not one of '
            '"day", "week" or "month"',
        ),
    ),
    Case(
        "multi-document-comments-and-markers",
        {
            ".cloned/all.yaml": "# header\n---\n"
            + SECRET
            + "---\n# the budget\n\n"
            + edit(BUDGET, "cost_usd: 50", "cost_usd: -1")
        },
        (".cloned/all.yaml:21:15: spec.limits.cost_usd: must be greater than or equal to 0",),
    ),
    # --- Fields ---------------------------------------------------------------------------
    Case(
        "unknown-field-did-you-mean",
        {".cloned/budgets.yaml": edit(BUDGET, "  period: month", "  periood: month")},
        ('.cloned/budgets.yaml:8:3: spec: unknown field "periood" (did you mean "period"?)',),
    ),
    Case(
        "unknown-field-no-close-match",
        {".cloned/budgets.yaml": edit(BUDGET, "  period: month", "  color: blue")},
        (
            '.cloned/budgets.yaml:8:3: spec: unknown field "color"; '
            "allowed: description, scope, period, limits, onExceed",
        ),
    ),
    Case(
        "unknown-field-in-list-item",
        {".cloned/workspace.yaml": edit(WORKSPACE_YAML, "publicKey", "pubKey")},
        (
            '.cloned/workspace.yaml:8:7: spec.approvers[0]: missing required field "publicKey"',
            '.cloned/workspace.yaml:9:7: spec.approvers[0]: unknown field "pubKey" '
            '(did you mean "publicKey"?)',
        ),
    ),
    Case(
        "wrong-type-string-for-integer",
        {".cloned/budgets.yaml": edit(BUDGET, "cost_usd: 50", "tokens: lots")},
        ('.cloned/budgets.yaml:10:13: spec.limits.tokens: expected an integer, got string "lots"',),
    ),
    Case(
        "wrong-type-string-for-boolean",
        {".cloned/connector.yaml": CONNECTOR + '  enabled: "yes"\n', ".cloned/secret.yaml": SECRET},
        ('.cloned/connector.yaml:11:12: spec.enabled: expected true or false, got string "yes"',),
    ),
    Case(
        "missing-required-field",
        {".cloned/budgets.yaml": edit(BUDGET, "  limits:\n    cost_usd: 50\n", "")},
        ('.cloned/budgets.yaml:5:1: spec: missing required field "limits"',),
    ),
    Case(
        "empty-metadata-name",
        {".cloned/budgets.yaml": edit(BUDGET, "name: monthly", "name:")},
        (".cloned/budgets.yaml:4:3: metadata.name: expected a string, got null",),
    ),
    Case(
        "invalid-metadata-name",
        {".cloned/budgets.yaml": edit(BUDGET, "name: monthly", "name: Monthly_Budget")},
        (
            '.cloned/budgets.yaml:4:9: metadata.name: "Monthly_Budget" is not valid: expected '
            "lower-case letters, digits and dashes, at most 63, not starting or ending with a dash",
        ),
    ),
    Case(
        "bad-enum-did-you-mean",
        {".cloned/budgets.yaml": edit(BUDGET, "period: month", "period: montly")},
        (
            '.cloned/budgets.yaml:8:11: spec.period: "montly" is not one of "day", "week" or '
            '"month" (did you mean "month"?)',
        ),
    ),
    Case(
        "budget-scope-two-keys",
        {
            ".cloned/budgets.yaml": edit(
                BUDGET, "    workspace: true\n", "    workspace: true\n    pipeline: triage\n"
            ),
            ".cloned/pipeline.yaml": PIPELINE,
        },
        (
            ".cloned/budgets.yaml:6:3: "
            "spec.scope: set exactly one of: workspace, connector, pipeline",
            UNKNOWN_SKILL,
        ),
    ),
    Case(
        "budget-scope-workspace-false",
        {".cloned/budgets.yaml": edit(BUDGET, "workspace: true", "workspace: false")},
        (".cloned/budgets.yaml:7:16: spec.scope.workspace: expected true, got boolean false",),
    ),
    Case(
        "budget-empty-limits",
        {".cloned/budgets.yaml": edit(BUDGET, "  limits:\n    cost_usd: 50\n", "  limits: {}\n")},
        (
            ".cloned/budgets.yaml:9:3: spec.limits: "
            "set at least one of: cost_usd, tokens, calls, wall_seconds",
        ),
    ),
    Case(
        "invalid-public-key",
        {
            ".cloned/workspace.yaml": edit(
                WORKSPACE_YAML, PUBLIC_KEY, "ssh-ed25519 AAAAnotakey alice"
            )
        },
        (
            '.cloned/workspace.yaml:9:18: spec.approvers[0].publicKey: "ssh-ed25519 AAAAnotakey '
            'alice" is not valid: expected an OpenSSH ed25519 public key line '
            '("ssh-ed25519 AAAA... name")',
        ),
    ),
    Case(
        "pipeline-duplicate-step-names",
        {".cloned/pipeline.yaml": PIPELINE + "    - name: fetch\n      skill: github.other\n"},
        (
            UNKNOWN_SKILL,
            '.cloned/pipeline.yaml:13:7: step name "fetch" appears twice (first at spec.steps[0])',
            '.cloned/pipeline.yaml:14:7: spec.steps[1].skill: no shipped skill "github.other"',
        ),
    ),
    # --- Across resources -----------------------------------------------------------------
    Case(
        "same-resource-in-two-files",
        {".cloned/a-budgets.yaml": BUDGET, ".cloned/b-budgets.yaml": BUDGET},
        (
            '.cloned/b-budgets.yaml:4:3: Budget "monthly" is defined twice: '
            "here and at .cloned/a-budgets.yaml:1",
        ),
    ),
    Case(
        "no-workspace",
        {".cloned/budgets.yaml": BUDGET},
        (".cloned: no Workspace resource: exactly one is required (cloned init)",),
        fixture="repo",
    ),
    Case(
        "two-workspaces",
        {".cloned/workspaces/other.yaml": edit(WORKSPACE_YAML, "name: demo", "name: other")},
        (
            '.cloned/workspaces/other.yaml:2:1: a second Workspace ("other"): '
            'exactly one is allowed, and "demo" is declared at .cloned/workspace.yaml:1',
        ),
    ),
    Case(
        "budget-scoped-to-missing-connector",
        {".cloned/budgets.yaml": edit(BUDGET, "workspace: true", "connector: gitlab")},
        ('.cloned/budgets.yaml:7:5: spec.scope.connector: no Connector named "gitlab"',),
    ),
    Case(
        "run-names-missing-pipeline",
        {".cloned/run.yaml": RUN},
        ('.cloned/run.yaml:6:3: spec.pipeline: no Pipeline named "triage"',),
    ),
    Case(
        "connector-secret-missing-secretref",
        {".cloned/connector.yaml": CONNECTOR},
        ('.cloned/connector.yaml:10:13: spec.secrets[0]: no SecretRef named "github-token"',),
    ),
    Case(
        "workspace-unknown-policy-pack",
        {".cloned/workspace.yaml": edit(WORKSPACE_YAML, "[baseline]", "[baseline, strictest]")},
        (
            ".cloned/workspace.yaml:6:27: spec.policyPacks[1]: no PolicyPack or built-in pack "
            'named "strictest" (did you mean "strict"?)',
        ),
    ),
    Case(
        "run-input-not-declared",
        {
            ".cloned/pipeline.yaml": PIPELINE,
            ".cloned/run.yaml": edit(
                RUN, "    repo: acme/app\n", "    repo: acme/app\n    branch: main\n"
            ),
        },
        (
            UNKNOWN_SKILL,
            '.cloned/run.yaml:9:5: spec.inputs: pipeline "triage" has no input "branch"',
        ),
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_bad_input_is_rejected_precisely(case: Case, request: pytest.FixtureRequest) -> None:
    repo: Path = request.getfixturevalue(case.fixture)
    place(repo, case.files)
    before = snapshot(repo)

    result = cloned("validate", cwd=repo)

    assert_clean_failure(result)
    assert result.out == ""
    assert result.err == expected_stderr(case.errors)
    assert snapshot(repo) == before, "validate wrote into the repository (a cache file?)"


def test_snapshot_sees_the_cache_a_valid_run_writes(workspace: Path) -> None:
    # The control for "nothing was written": the same check does catch a cache write.
    place(workspace, {".cloned/budgets.yaml": BUDGET})
    before = snapshot(workspace)

    assert cloned("validate", cwd=workspace).code == 0

    assert ".cloned/state/cache/resources.json" in set(snapshot(workspace)) - set(before)


def test_at_least_thirty_cases_with_unique_ids() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def test_every_problem_in_every_file_is_reported_in_one_run(workspace: Path) -> None:
    place(
        workspace,
        {
            ".cloned/z-budgets.yaml": edit(
                edit(BUDGET, "period: month", "period: montly"), "cost_usd: 50", "cost_usd: lots"
            ),
            ".cloned/m-run.yaml": RUN,
            ".cloned/c-latin1.yaml": b"kind: caf\xe9\n",
            ".cloned/a/nested.yaml": "apiVersion: cloned/v1\nkind: Budget: x\n",
        },
    )
    before = snapshot(workspace)

    result = cloned("validate", cwd=workspace)

    assert_clean_failure(result)
    assert result.err == expected_stderr(
        [
            ".cloned/a/nested.yaml:2:13: "
            "invalid YAML: mapping values are not allowed in this context",
            ".cloned/c-latin1.yaml:1:10: file is not UTF-8 (byte 0xe9)",
            # m-run.yaml names a pipeline "triage" that no readable file declares; while two
            # files cannot be read, that could be one of them, so it is not reported as dangling.
            '.cloned/z-budgets.yaml:8:11: spec.period: "montly" is not one of "day", "week" or '
            '"month" (did you mean "month"?)',
            ".cloned/z-budgets.yaml:10:15: "
            'spec.limits.cost_usd: expected a number, got string "lots"',
        ]
    )
    assert snapshot(workspace) == before


def test_json_reports_every_problem_for_ci(workspace: Path) -> None:
    place(
        workspace,
        {
            ".cloned/budgets.yaml": edit(BUDGET, "period: month", "period: montly"),
            ".cloned/run.yaml": RUN,
        },
    )
    before = snapshot(workspace)

    result = cloned("validate", "--json", cwd=workspace)

    assert_clean_failure(result)
    assert result.err == ""
    payload = json.loads(result.out)
    assert payload["valid"] is False
    assert Path(payload["root"]) == workspace.resolve()
    assert payload["problems"] == [
        {
            "file": ".cloned/budgets.yaml",
            "line": 8,
            "column": 11,
            "message": 'spec.period: "montly" is not one of "day", "week" or "month" '
            '(did you mean "month"?)',
        },
        {
            "file": ".cloned/run.yaml",
            "line": 6,
            "column": 3,
            "message": 'spec.pipeline: no Pipeline named "triage"',
        },
    ]
    assert snapshot(workspace) == before


def test_json_problem_without_a_position(repo: Path) -> None:
    place(repo, {".cloned/budgets.yaml": BUDGET})

    result = cloned("validate", "--json", cwd=repo)

    assert_clean_failure(result)
    assert json.loads(result.out)["problems"] == [
        {
            "file": ".cloned",
            "line": None,
            "column": None,
            "message": "no Workspace resource: exactly one is required (cloned init)",
        }
    ]


def test_paths_are_relative_to_the_folder_validate_runs_in(workspace: Path) -> None:
    place(workspace, {".cloned/budgets.yaml": edit(BUDGET, "period: month", "period: montly")})
    deep = workspace / "src" / "app"
    deep.mkdir(parents=True)
    before = snapshot(workspace)

    result = cloned("validate", cwd=deep)

    assert_clean_failure(result)
    assert result.err == expected_stderr(
        [
            '../../.cloned/budgets.yaml:8:11: spec.period: "montly" is not one of "day", "week" '
            'or "month" (did you mean "month"?)'
        ]
    )
    assert snapshot(workspace) == before


def test_no_workspace_from_a_subfolder(repo: Path) -> None:
    place(repo, {".cloned/budgets.yaml": BUDGET})
    sub = repo / "src"
    sub.mkdir()

    result = cloned("validate", cwd=sub)

    assert_clean_failure(result)
    assert result.err == expected_stderr(
        ["../.cloned: no Workspace resource: exactly one is required (cloned init)"]
    )


def test_other_place_named_in_a_message_is_relative_to_the_folder_too(workspace: Path) -> None:
    # The second location inside the message is shown relative to the folder too.
    # ("here and at .cloned/a-budgets.yaml:1"), which does not resolve from `src/`.
    place(workspace, {".cloned/a-budgets.yaml": BUDGET, ".cloned/b-budgets.yaml": BUDGET})
    sub = workspace / "src"
    sub.mkdir()

    result = cloned("validate", cwd=sub)

    assert_clean_failure(result)
    assert result.err == expected_stderr(
        [
            '../.cloned/b-budgets.yaml:4:3: Budget "monthly" is defined twice: '
            "here and at ../.cloned/a-budgets.yaml:1"
        ]
    )
