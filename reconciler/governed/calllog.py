"""What a governed call leaves behind: its result as returned (capped, redacted), its
`tool.called` audit event (SPEC section 11's payload plus rule, redacted arguments, result size
and the front end it came through), when a live listing differs from the pins, a
`tool.drifted` event and the listing recorded for `cloned plan`, and a `connector.unsandboxed`
event for each connector process that serves calls without isolation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.audit.log import append
from reconciler.canonical import canonical_json
from reconciler.clock import stamp
from reconciler.governed.applied import AppliedConnector
from reconciler.governed.auditsink import Write
from reconciler.governed.pins import Observed
from reconciler.redact import Redactor
from reconciler.runtime.definitions import compare
from reconciler.runtime.types import ToolResult
from reconciler.state import listings
from reconciler.state.db import Connection
from reconciler.state.listings import Listing

if TYPE_CHECKING:
    from reconciler.egress.sandbox import Confinement
    from reconciler.governed.calls import CallOutcome, CallRequest

MAX_RESULT_BYTES = 1024 * 1024
"""The largest result a call returns, in bytes of its compact JSON (docs/connectors.md); a larger
one is replaced by a tool error naming its size."""

MAX_AUDITED_ARGUMENTS = 16 * 1024
"""Arguments larger than this (canonical JSON) are audited by their digest alone."""


def result_of(
    result: ToolResult, redactor: Redactor
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any] | None, int, str | None]:
    """(content, structured content, size, why it was withheld) of a tool's result: redacted,
    or replaced by an error when it is over `MAX_RESULT_BYTES`."""
    size = result.size()
    if size > MAX_RESULT_BYTES:
        reason = (
            f"the result is {size:,} bytes, over the {MAX_RESULT_BYTES:,}-byte limit of a "
            "governed call; it was not returned"
        )
        return ({"type": "text", "text": reason},), None, size, reason
    content = tuple(redactor.data(dict(block)) for block in result.content)
    structured = redactor.data(result.structured) if result.structured is not None else None
    return content, structured, size, None


def called_event(
    request: CallRequest,
    outcome: CallOutcome,
    actor: str,
    redactor: Redactor,
    audited: Any = None,
) -> Write:
    """The write of the call's `tool.called` event; `audited`: the call's `audited_arguments`
    when the path already has them (else they are made here)."""
    payload: dict[str, Any] = {
        "connector": request.connector,
        "tool": request.tool,
        "args_digest": outcome.args_digest,
        "decision": outcome.decision,
        "latency_ms": outcome.latency_ms,
        "error": _error(outcome),
        "rule": outcome.rule,
        "arguments": audited
        if audited is not None
        else audited_arguments(request.arguments, redactor),
        "result_bytes": outcome.result_bytes,
        "via": request.via,
    }
    if request.pipeline is not None:
        payload["pipeline"] = request.pipeline
    if outcome.request_id is not None:
        payload["request"] = outcome.request_id
    subject = f"connector.{request.connector}"

    def write(connection: Connection) -> None:
        append(
            connection,
            actor=actor,
            type="tool.called",
            subject=subject,
            payload=payload,
            redactor=redactor,
        )

    return write


def audited_arguments(arguments: Any, redactor: Redactor, size: int | None = None) -> Any:
    """The arguments as the audit log and an approval request keep them: redacted, and left
    out when too large to be worth keeping (the digest still names them). `size`: the length
    of their canonical JSON when the caller has it already."""
    if size is None:
        try:
            size = len(canonical_json(arguments))
        except (TypeError, ValueError, RecursionError):
            return {"omitted": "not plain JSON data"}
    if size > MAX_AUDITED_ARGUMENTS:
        return {"omitted": f"{size:,} bytes"}
    return redactor.data(arguments)


def _error(outcome: CallOutcome) -> str | None:
    if outcome.decision != "allowed" or outcome.reason is not None:
        return outcome.reason
    if outcome.is_error:
        texts = [b.get("text") for b in outcome.content if isinstance(b.get("text"), str)]
        first = str(texts[0]) if texts else ""
        return "the tool answered with an error" + (f": {first[:200]}" if first else "")
    return None


def drift_writes(
    connector: AppliedConnector,
    observed: Observed,
    live: Sequence[Mapping[str, Any]],
    actor: str,
    redactor: Redactor,
) -> list[Write]:
    """The `tool.drifted` event and the live listing recorded for `cloned plan`'s re-pin."""
    address = f"connector.{connector.name}"
    tools = [{"name": name, "status": status} for name, status in sorted(observed.drift.items())]
    package = str(connector.package.get("digest") or "")
    # Recorded as listed, as apply records an install's listing: it is what the next plan pins
    # (and the gateway then serves and compares with the live one), so a masked copy would pin
    # a definition the server never lists. Plans and the lock mask it when they show it.
    listing = [dict(tool) for tool in live]
    at = stamp()

    def write(connection: Connection) -> None:
        append(
            connection,
            actor=actor,
            type="tool.drifted",
            subject=address,
            payload={"connector": connector.name, "tools": tools},
            redactor=redactor,
        )
        listings.put(connection, Listing(address, package, list(listing), at, "runtime"))

    return [write]


def settled_writes(
    connector: AppliedConnector,
    stored: Listing | None,
    live: Sequence[Mapping[str, Any]],
    redactor: Redactor,
) -> list[Write]:
    """When the live listing is the pinned one again but the last one recorded (of the same
    package) differed, record the live one: a plan then stops proposing to pin what the server
    no longer lists, and drift stops reporting it."""
    package = str(connector.package.get("digest") or "")
    if stored is None or stored.package_digest != package:
        return []
    if all(d.status == "same" for d in compare(connector.tools, stored.tools)):
        return []
    address = f"connector.{connector.name}"
    listing = [redactor.data(dict(tool)) for tool in live]
    at = stamp()

    def write(connection: Connection) -> None:
        listings.put(connection, Listing(address, package, listing, at, "runtime"))

    return [write]


def event_write(
    kind: str, subject: str, payload: dict[str, Any], actor: str, redactor: Redactor
) -> Write:
    """The write of one audit event, committed with the call's other writes."""

    def write(connection: Connection) -> None:
        append(
            connection,
            actor=actor,
            type=kind,
            subject=subject,
            payload=payload,
            redactor=redactor,
        )

    return write


def unsandboxed_event(name: str, confinement: Confinement, actor: str, redactor: Redactor) -> Write:
    """The `connector.unsandboxed` event: this process of `name` runs without isolation."""
    payload = {"connector": name, "profile": confinement.profile, "reason": confinement.reason}
    return event_write("connector.unsandboxed", f"connector.{name}", payload, actor, redactor)


def granted_event(name: str, payload: dict[str, Any], actor: str, redactor: Redactor) -> Write:
    """The `secret.granted` event: this process of `name` was handed these secrets (by name;
    `providers.grants.Grants.payload`)."""
    return event_write("secret.granted", f"connector.{name}", payload, actor, redactor)
