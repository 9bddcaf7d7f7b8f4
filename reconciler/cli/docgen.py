"""Generate `docs/cli.md` from the commands' own `--help`: `python -m reconciler.cli.docgen`.

`tests/unit/test_cli_docs.py` fails when the committed reference and `--help` disagree.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys


def commands() -> list[tuple[str, ...]]:
    """Every command path of the CLI, parents before children, in the order --help lists them."""
    import typer

    from reconciler.cli.app import app

    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        found.append(path)
        children = getattr(command, "commands", None) or {}
        for name, child in children.items():
            walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


HEADER = """\
# CLI reference

Generated from `cloned --help` by `python -m reconciler.cli.docgen > docs/cli.md`; a test keeps
it in step with the code. Every command exits 0 on success and 1 on an error (bad input names
the file, line and column, or the flag); see [specs/exit-codes.md](../specs/exit-codes.md).
"""


def help_text(command: tuple[str, ...]) -> str:
    """What `cloned COMMAND --help` prints, at a fixed width."""
    from reconciler.cli.main import run

    buffer = io.StringIO()
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(buffer):
            run([*command, "--help"])
    finally:
        # Restored: a caller in the same process (the test suite) keeps its own width.
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    return buffer.getvalue().rstrip() + "\n"


def render() -> str:
    """The whole reference page."""
    parts = [HEADER]
    for command in commands():
        title = " ".join(("cloned", *command))
        parts.append(f"\n## `{title}`\n\n```text\n{help_text(command)}```\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
