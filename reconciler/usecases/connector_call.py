"""`connectors call NAME TOOL --args JSON`: one tool call through the governed call path
(`governed.calls.GovernedCaller`) and a real `runtime.supervisor.Supervisor`, exactly as the
gateway makes it (checks, budgets, approval, redaction, one `tool.called` event), `via="cli"`.
The connector is started for the call and stopped after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from reconciler.governed.calls import CallOutcome

ARGS_FLAG = "--args"
MAX_ARGS_BYTES = 4 * 1024 * 1024
"""The largest --args (or --args @file) accepted."""


@dataclass(frozen=True)
class CallResult:
    """One governed call made from the command line."""

    connector: str
    tool: str
    outcome: CallOutcome

    @property
    def exit_code(self) -> ExitCode:
        """0 answered; 3 waiting for a per-call approval; 1 refused, failed or a tool error."""
        if self.outcome.decision == "approval":
            return ExitCode.APPROVALS_PENDING
        if self.outcome.decision == "allowed" and not self.outcome.is_error:
            return ExitCode.OK
        return ExitCode.ERROR

    def to_json(self) -> dict[str, Any]:
        return self.outcome.to_json()


def parse_args(text: str) -> dict[str, Any]:
    """`--args`: a JSON object, or `@FILE` holding one; anything else is a usage error naming
    the flag (and the line and column of a JSON syntax error)."""
    where = ARGS_FLAG
    if text.startswith("@"):
        file = Path(text[1:])  # relative to where the user stands, as a shell's @file
        where = f"{ARGS_FLAG} @{text[1:]}"
        try:
            if file.stat().st_size > MAX_ARGS_BYTES:
                raise UsageError(f"{where}: the file is over {MAX_ARGS_BYTES:,} bytes")
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"{where}: cannot read the file: {reason}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint='give a JSON object, e.g. --args \'{"name": "ideas"}\'',
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{where}: must be a JSON object (the tool's arguments by name), "
            f"not {type(value).__name__ if value is not None else 'null'}",
            hint="e.g. --args '{\"name\": \"ideas\"}' or --args '{}'",
        )
    return value


def call(*, path: Path, name: str, tool: str, args: str, wait: float = 0.0) -> CallResult:
    """Make one governed call of `tool` of connector `name` with the `--args` text."""
    from reconciler.load.files import find_root

    if wait < 0:
        raise UsageError(f"--wait: {wait:g} is negative; give seconds, e.g. --wait 60")
    arguments = parse_args(args)
    root = find_root(path)
    outcome = _run(root, name, tool, arguments, wait)
    return CallResult(name, tool, outcome)


def _run(root: Path, name: str, tool: str, arguments: dict[str, Any], wait: float) -> CallOutcome:
    import anyio

    from reconciler.governed.calls import CallRequest, GovernedCaller
    from reconciler.redact import active
    from reconciler.runtime.supervisor import Supervisor

    request = CallRequest(name, tool, arguments, via="cli", wait=wait)

    async def main() -> CallOutcome:
        async with Supervisor(redactor=active()) as supervisor:
            caller = GovernedCaller(root, connectors=supervisor, actor="cli")
            try:
                return await caller.call(request)
            finally:
                await caller.aclose()

    return anyio.run(main)
