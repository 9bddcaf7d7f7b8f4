"""docs/cli.md is the commands' own --help; and --help teaches the exit codes."""

from __future__ import annotations

from reconciler.cli import docgen
from tests.conftest import REPO, cloned


def test_cli_reference_matches_help() -> None:
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == docgen.render(), "regenerate: python -m reconciler.cli.docgen > docs/cli.md"


def test_root_help_lists_commands_and_exit_codes() -> None:
    result = cloned("--help")
    assert result.code == 0
    for word in ("init", "validate", "keys", "Exit codes: 0 success; 1 error", "4 policy forbids"):
        assert word in result.out


def test_no_arguments_shows_help_and_version_works() -> None:
    assert "Usage: cloned" in cloned().out + cloned().err
    assert cloned("--version").out.startswith("cloned 0.")
