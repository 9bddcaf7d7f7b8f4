"""`cloned keys generate NAME` and `cloned keys list`: approver key pairs in $CLONED_HOME."""

from __future__ import annotations

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="Manage Ed25519 approver keys (OpenSSH format) in $CLONED_HOME/keys.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("generate")
def generate(
    name: str = typer.Argument(..., help="Key name: lower-case letters, digits and dashes."),
) -> int:
    """Create key pair NAME and print its public key line.

    The private key is written to $CLONED_HOME/keys/NAME (mode 0600) and the public key to
    NAME.pub. Put the printed line under `approvers` in the Workspace to let the key approve.

    Example:

    \b
      cloned keys generate alice
      ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice
    """
    from reconciler.usecases.keys import generate as run

    result = run(name=name)
    print(result.key.public_key)
    return int(result.exit_code)


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> int:
    """List key pairs with their fingerprints."""
    from reconciler.usecases.keys import list_keys

    result = list_keys()
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if not result.keys:
        say(f"No keys in {result.folder}. Create one with `cloned keys generate NAME`.")
        return int(result.exit_code)
    width = max(len(key.name) for key in result.keys)
    for key in result.keys:
        private = "" if key.private_path else "  (public key only)"
        say(f"{key.name:<{width}}  {key.fingerprint}{private}")
    return int(result.exit_code)
