"""How a connector's tools and calls read on a terminal: `connectors tools NAME`'s table (flags
in full under it), a governed call's answer or refusal, and `connectors stats`'s tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler.cli.output import say
from reconciler.cli.render_connectors import columns, short

if TYPE_CHECKING:
    from reconciler.usecases.connector_call import CallResult
    from reconciler.usecases.connector_stats import ConnectorStats
    from reconciler.usecases.connector_tools import ConnectorTools, ToolRow


def tools(result: ConnectorTools) -> None:
    """`connectors tools NAME` for people."""
    if not result.pinned:
        say(f"Connector {result.connector} has no pinned tools yet.")
        say(
            "Apply lists an enabled connector's tools once it is installed and pins them under "
            "policy: run `cloned apply` (and approve the pins if policy asks), or `cloned plan "
            "--refresh` to see what it would pin."
        )
        return
    columns(
        ("TOOL", "GATEWAY NAME", "TITLE", "PIN", "STATUS"),
        [(t.name, t.public, t.title or "-", short(t.digest), _status(t)) for t in result.tools],
    )
    for tool in result.tools:
        if tool.flags:
            say(f"Flags of {tool.name} (read its definition before you trust it):")
            for flag in tool.flags:
                say(f"  ! {flag}")
    if not result.enabled:
        say(f"(Connector {result.connector} is disabled: the gateway serves none of these.)")
    if any(tool.drift for tool in result.tools):
        say(
            f"(The last listing, seen by {result.listing_by} at {result.listing_at}, differs from "
            "the pins: a drifted tool is refused until `cloned plan` re-pins it and it is applied.)"
        )


def _status(tool: ToolRow) -> str:
    if tool.status == "denied":
        return f"denied ({tool.rule})"
    if tool.status == "needs-approval":
        return f"needs approval per call ({tool.rule})"
    if tool.status == "drifted":
        return f"drifted ({tool.drift})"
    if tool.status == "disabled":
        return f"not served ({tool.rule})"
    return tool.status


def call(result: CallResult) -> None:
    """A governed call's answer (its text, or its structured content as JSON) or why not."""
    outcome = result.outcome
    public = f"{result.connector}__{result.tool}"
    if outcome.decision == "approval":
        say(f"{public} needs an approval of this call: {outcome.reason}", err=True)
        say(f"  request  {outcome.request_id}", err=True)
        say(
            f"Approve it with `cloned approvals approve {outcome.request_id} --key KEY`, then "
            "run the same call again (or pass --wait SECONDS to wait for it).",
            err=True,
        )
        return
    if outcome.decision in ("refused", "failed"):
        what = "refused" if outcome.decision == "refused" else "failed"
        say(f"Error: {public} {what}: {outcome.reason}", err=True)
        say(f"  rule  {outcome.rule}", err=True)
        return
    _answer(outcome.content, outcome.structured, err=outcome.is_error)
    if outcome.is_error:
        say(f"Error: {public} answered with an error.", err=True)


def _answer(content: Any, structured: dict[str, Any] | None, *, err: bool) -> None:
    if structured is not None:
        for line in json.dumps(structured, indent=2, ensure_ascii=False).splitlines():
            say(line, err=err)
        return
    for block in content:
        if block.get("type") == "text":
            for line in str(block.get("text", "")).splitlines() or [""]:
                say(line, err=err)
        else:
            kind = block.get("mimeType") or block.get("uri") or ""
            say(f"[{block.get('type')} {kind}]".replace(" ]", "]"), err=err)


def stats(result: ConnectorStats) -> None:
    """`connectors stats` for people: the tools' calls, then each connector's breaker."""
    window = f" since {result.to_json()['since']}" if result.since is not None else ""
    if not result.tools:
        say(f"No tool calls{window} in the audit log.")
    else:
        columns(
            ("CONNECTOR", "TOOL", "CALLS", "ERRORS", "REFUSED", "APPROVAL", "P50", "P95", "P99"),
            [
                (
                    t.connector,
                    t.tool,
                    str(t.calls),
                    str(t.errors),
                    str(t.refusals),
                    str(t.approvals),
                    *(_ms(t.percentile(rank)) for rank in (50, 95, 99)),
                )
                for t in result.tools
            ],
        )
        say(f"(Latency in ms, of the calls made{window}.)")
    _breakers(result)


def _breakers(result: ConnectorStats) -> None:
    gateway = result.gateway
    if gateway is None:
        say("Breakers: no gateway running (its connectors' state lives in its memory).")
        return
    say(f"Breakers (gateway pid {gateway.pid}, as of {gateway.written_at}):")
    rows = []
    for health in result.connectors:
        status = health.status
        if status is None:
            rows.append((health.name, "closed", "stopped", "-", "not used yet"))
            continue
        rows.append(
            (
                health.name,
                str(status.get("breaker")),
                str(status.get("process")),
                str(status.get("restarts", 0)),
                str(status.get("last_error") or "-"),
            )
        )
    columns(("CONNECTOR", "BREAKER", "PROCESS", "RESTARTS", "LAST ERROR"), rows)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
