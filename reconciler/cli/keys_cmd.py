"""`cloned keys generate NAME` and `cloned keys list`: approver key pairs in $CLONED_HOME."""

from __future__ import annotations

import typer

from reconciler.cli.output import print_json, say
from reconciler.errors import ExitCode

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
    from reconciler import keys

    key = keys.generate(name)
    print(key.public_key)
    return int(ExitCode.OK)


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> int:
    """List key pairs with their fingerprints."""
    from reconciler import keys
    from reconciler.home import keys_dir

    found = keys.list_keys()
    if as_json:
        print_json(
            [
                {
                    "name": key.name,
                    "public_key": key.public_key,
                    "fingerprint": key.fingerprint,
                    "has_private_key": key.private_path is not None,
                }
                for key in found
            ]
        )
        return int(ExitCode.OK)
    if not found:
        say(f"No keys in {keys_dir()}. Create one with `cloned keys generate NAME`.")
        return int(ExitCode.OK)
    width = max(len(key.name) for key in found)
    for key in found:
        private = "" if key.private_path else "  (public key only)"
        say(f"{key.name:<{width}}  {key.fingerprint}{private}")
    return int(ExitCode.OK)
