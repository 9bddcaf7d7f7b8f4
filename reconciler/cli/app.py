"""The typer application: every command, imported cheaply (implementations load on use)."""

from __future__ import annotations

import typer

from reconciler import __version__
from reconciler.cli import (
    apply_cmd,
    approvals_cmd,
    archive_cmd,
    artifacts_cmd,
    audit_cmd,
    budgets_cmd,
    connectors_cmd,
    drift_cmd,
    gateway_cmd,
    init_cmd,
    keys_cmd,
    plan_cmd,
    policy_cmd,
    reconcile_cmd,
    registry_cmd,
    runs_cmd,
    validate_cmd,
    vault_cmd,
)

HELP = """\
Cloned: desired state for AI agent workspaces, governed the GitOps way.

Keep your workspace (policy, budgets, connectors, pipelines) as YAML in .cloned/ of a git
repository; Cloned validates it, plans the difference and converges.

Start with `cloned init`, then `cloned validate`.
"""

EPILOG = """\
\b
Exit codes: 0 success; 1 error (bad input or failure, the message says what and where);
2 plan --detailed-exitcode found changes, or drift found;
3 apply finished but approvals are pending; 4 policy forbids a change in the plan.
With --json (or --format json), an error too prints one JSON object on stdout:
{"error": MESSAGE, "exit_code": N, "problems": [{"file", "line", "column", "message"}]}.
"""

app = typer.Typer(
    name="cloned",
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        print(f"cloned {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


app.command("init", epilog=EPILOG)(init_cmd.init)
app.command("validate", epilog=EPILOG)(validate_cmd.validate)
app.command("plan", epilog=EPILOG)(plan_cmd.plan)
app.command("show", epilog=EPILOG)(plan_cmd.show)
app.command("apply", epilog=EPILOG)(apply_cmd.apply)
app.command("drift", epilog=EPILOG)(drift_cmd.drift)
app.command("reconcile", epilog=EPILOG)(reconcile_cmd.reconcile)
app.add_typer(approvals_cmd.app, name="approvals")
app.add_typer(archive_cmd.app, name="archive")
app.add_typer(artifacts_cmd.app, name="artifacts")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(budgets_cmd.app, name="budgets")
app.add_typer(connectors_cmd.app, name="connectors")
app.add_typer(gateway_cmd.app, name="gateway")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(vault_cmd.app, name="vault")
