"""`cloned vault status|list|set|rm`: the workspace's vault (docs/vault.md).

A value is read only from stdin or a hidden prompt, never from an argument (it would land in
the shell's history and the process list), and nothing prints it: `set` shows the name and
version it stored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.cli.output import print_json, say

app = typer.Typer(
    help="The vault holding secret values outside git: status, list, set, rm.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PATH = typer.Option(Path("."), "--path", help="A folder inside the repository.")
MAX_READ = 64 * 1024
"""More than any value a vault keeps: a longer stdin is refused by the value check."""


@app.command("status")
def status(
    path: Path = PATH,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Say which vault the Workspace uses, where it is and whether it answers.

    The provider is the Workspace's `spec.vault.provider`: `dev` (a local encrypted file,
    for development; every line says DEV ONLY) or `azure` (Azure Key Vault). Exits 1 when the
    vault cannot be asked or its file is refused, and when the Workspace has no vault.

    Examples:

    \b
      cloned vault status
      dev (DEV ONLY: ...): .../.cloned/state/vault/dev.json: reachable, 2 secrets: key ...
      cloned vault status --json | jq .reachable
    """
    from reconciler.usecases.vault import status as run

    result = run(path=path)
    if as_json:
        print_json(result.to_json())
    else:
        say(result.status.line(), err=not result.status.reachable)
    return int(result.exit_code)


@app.command("list")
def list_(
    path: Path = PATH,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """List the secrets in the vault: name, latest version and when it was set.

    Values are never listed; `vault://NAME` in a SecretRef's `ref` names a secret.

    Example:

    \b
      cloned vault list --json | jq -r '.secrets[].name'
    """
    from reconciler.usecases.vault import list_secrets

    result = list_secrets(path=path)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    if not result.secrets:
        say(f"No secrets in the {result.provider} vault. Add one with `cloned vault set NAME`.")
        return int(result.exit_code)
    width = max(len(info.name) for info in result.secrets)
    for info in result.secrets:
        say(f"{info.name:<{width}}  {info.version or '-'}  {info.updated or '-'}")
    return int(result.exit_code)


# Further words are collected (not declared) so that a value given as an argument is refused
# with the reason, not click's "unexpected extra argument".
@app.command("set", context_settings={"allow_extra_args": True})
def set_(
    context: typer.Context,
    name: str = typer.Argument(..., help="The secret's name: vault://NAME refers to it."),
    path: Path = PATH,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Store a new version of secret NAME, its value read from stdin or a hidden prompt.

    There is no value argument: a value on the command line would stay in the shell's history
    and show in the process list. Piped in, the value is stdin with one trailing newline
    removed; at a terminal it is asked twice, hidden. Values shorter than 8 characters are
    refused (they could not be masked safely in output). Prints the name and the new version,
    never the value; the audit log records the change by name and version.

    Examples:

    \b
      cloned vault set github-token < token.txt
      printf %s "$TOKEN" | cloned vault set github-token
      cloned vault set github-token         # asks for the value twice, hidden
    """
    from reconciler.errors import UsageError

    if context.args:
        raise UsageError(
            "`cloned vault set` takes only NAME: the value is read from stdin or a hidden "
            "prompt, never from an argument (it would stay in the shell's history)",
            hint='printf %s "$VALUE" | cloned vault set NAME',
        )
    from reconciler.usecases.vault import set_secret

    result = set_secret(path=path, name=name, value=_read_value(name))
    if as_json:
        print_json(result.to_json())
    else:
        say(f"Set {result.name} version {result.version} in the {result.provider} vault.")
    return int(result.exit_code)


@app.command("rm")
def rm(
    name: str = typer.Argument(..., help="The secret to remove, with every version."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    path: Path = PATH,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Remove secret NAME and every version of it from the vault.

    Asks first at a terminal; without one (a script, CI), --yes is required. Connectors and
    steps that use the secret fail closed from then on (a plan shows it missing).

    Examples:

    \b
      cloned vault rm old-token
      cloned vault rm old-token --yes --json
    """
    from reconciler.errors import UsageError

    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"`cloned vault rm {name}` needs --yes when there is no terminal to ask on",
            )
        if not typer.confirm(f"Remove secret {name} and every version of it?", err=True):
            say("Nothing was removed.", err=True)
            return 1
    from reconciler.usecases.vault import delete_secret

    result = delete_secret(path=path, name=name)
    if as_json:
        print_json(result.to_json())
    else:
        say(f"Removed {result.name} (every version) from the {result.provider} vault.")
    return int(result.exit_code)


def _read_value(name: str) -> str:
    """The value: stdin without its one trailing newline, or typed twice at a hidden prompt."""
    if not sys.stdin.isatty():
        value = sys.stdin.read(MAX_READ)
        if value.endswith("\n"):
            value = value[:-2] if value.endswith("\r\n") else value[:-1]
        return value
    import getpass

    from reconciler.errors import UsageError

    first = getpass.getpass(f"Value of {name}: ", stream=sys.stderr)
    second = getpass.getpass(f"Value of {name} again: ", stream=sys.stderr)
    if first != second:
        raise UsageError("the two values typed differ; nothing was written")
    return first
