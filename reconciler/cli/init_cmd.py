"""`cloned init [DIR]`: start a workspace in a new or existing repository."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import say


def init(
    directory: Path = typer.Argument(
        Path(), help="Where to create the workspace (default: here).", show_default=False
    ),
    name: str = typer.Option(None, "--name", help="Workspace name (default: the folder's name)."),
) -> int:
    """Create a git repository if needed and a commented starter .cloned/ folder.

    The starter holds a Workspace that applies the built-in `baseline` policy and lists you as
    an approver in the `admins` group (a key named after you is created in
    $CLONED_HOME/keys when none exists), and one workspace-wide Budget. `.cloned/state/` is
    added to .gitignore. An existing .cloned/ is never overwritten.
    """
    from reconciler.usecases.init import init as run

    result = run(path=directory, name=name)
    if result.created_repo:
        say(f"Initialised a git repository in {result.root}")
    say(f"Created a Cloned workspace in {result.root / '.cloned'}:")
    for rel in result.files:
        say(f"  {rel}")
    if result.gitignore_updated:
        say("  .gitignore (ignores .cloned/state/)")
    verb = "Generated" if result.key_created else "Using existing"
    say(f"{verb} approver key {result.key.name!r} ({result.key.fingerprint})")
    if result.key.private_path is not None:
        say(f"  private key: {result.key.private_path}")
    say()
    say("Next steps:")
    say("  1. Review .cloned/workspace.yaml and .cloned/budgets.yaml")
    say("  2. cloned validate")
    say("  3. git add .cloned .gitignore && git commit -m 'Start a Cloned workspace'")
    return int(result.exit_code)
