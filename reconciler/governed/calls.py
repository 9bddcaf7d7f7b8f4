"""The one governed call path: every tool call (the gateway's, `cloned connectors call`'s, a
pipeline step's) goes through `GovernedCaller.call`, which checks in this order and lets
nothing reach the connector before all pass (docs/connectors.md, "The governed call path"):

1. the connector is applied, enabled and installed, and the tool allowed (`view.allowed`);
2. the tool is pinned, and the live listing of this start of the connector agrees (rug pull);
3. the arguments fit the pinned input schema;
4. a per-call approval when the policy asks for one (before anything is counted, so a call
   waiting for approval uses no budget);
5. the budgets in scope have room and the rate windows too, checked and counted together in
   one transaction; then a concurrency slot, waited for up to the connector's timeout;
6. the call, with the connector's timeout; its result capped and redacted;
7. one `tool.called` audit event, group-committed, before the result is returned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from reconciler.canonical import canonical_json, digest_of
from reconciler.clock import SYSTEM, Clock
from reconciler.egress.sandbox import SandboxRefused
from reconciler.errors import ClonedError
from reconciler.governed import approval, arguments
from reconciler.governed.admission import Admission, Admitter, Refusal
from reconciler.governed.applied import AppliedConnector, AppliedView, applied_digest, read_applied
from reconciler.governed.auditsink import AuditSink, Write
from reconciler.governed.calllog import (
    audited_arguments,
    called_event,
    drift_writes,
    granted_event,
    result_of,
    settled_writes,
    unsandboxed_event,
)
from reconciler.governed.metrics import Recorder, from_environment
from reconciler.governed.pins import Observed, PinGuard, refusal
from reconciler.providers.grants import GrantRefused
from reconciler.providers.starting import Start, start_of
from reconciler.redact import Redactor, active
from reconciler.runtime.types import ConnectorStatus, Launch, RuntimeFailure, ToolResult
from reconciler.state import listings
from reconciler.state.db import StateDB

if TYPE_CHECKING:
    from reconciler.egress.pool import ProxyPool
    from reconciler.providers.grants import Grants

Decision = Literal["allowed", "refused", "approval", "failed"]


@dataclass(frozen=True)
class CallRequest:
    """One tool call to make under governance."""

    connector: str
    tool: str
    arguments: dict[str, Any]
    via: str = "cli"  # "gateway" | "cli" | "pipeline"
    pipeline: str | None = None
    wait: float = 0.0
    """Seconds to wait for a per-call approval before answering."""


@dataclass(frozen=True)
class CallOutcome:
    """What a governed call came to; refusals are tool errors whose text is `reason`."""

    decision: Decision
    content: tuple[dict[str, Any], ...]
    structured: dict[str, Any] | None
    is_error: bool
    rule: str | None
    reason: str | None
    request_id: str | None
    latency_ms: float
    args_digest: str
    result_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The outcome as `cloned connectors call --json` prints it."""
        return {
            "decision": self.decision,
            "content": list(self.content),
            "structuredContent": self.structured,
            "isError": self.is_error,
            "rule": self.rule,
            "reason": self.reason,
            "request": self.request_id,
            "latency_ms": self.latency_ms,
            "args_digest": self.args_digest,
            "result_bytes": self.result_bytes,
        }


class Connectors(Protocol):
    """The runtime the path calls through (`reconciler.runtime.supervisor.Supervisor`)."""

    async def list_tools(self, launch: Launch) -> list[dict[str, Any]]:
        """The connector's live tool listing (starting it when it is not running)."""
        ...

    async def call_tool(
        self, launch: Launch, tool: str, arguments: dict[str, Any], *, timeout: float
    ) -> ToolResult:
        """One `tools/call`; `RuntimeFailure` when the connector cannot answer."""
        ...

    def status(self, name: str) -> ConnectorStatus:
        """What the supervisor knows of the connector now."""
        ...


@dataclass
class _Verified:
    """A Launch whose installed files were verified under applied state `applied`; `pid` is
    the connector process known to run from them (None until one is seen running)."""

    applied: str
    start: Start
    pid: int | None
    announced: int | None = None
    """The last process audited as started without isolation (`connector.unsandboxed`)."""
    granted: int | None = None
    """The last process audited as handed its secrets (`secret.granted`)."""


@dataclass
class _Call:
    """One call on its way through the path: what the audit event will say."""

    request: CallRequest
    started: float
    args_digest: str = ""
    audited: Any = None
    """The arguments as audited (redacted, or omitted when large), once computed."""
    writes: list[Write] = field(default_factory=list)
    admission: Admission | None = None


class _Stop(Exception):
    """Ends a call early with its outcome."""

    def __init__(
        self, decision: Decision, reason: str, rule: str | None, request_id: str | None = None
    ) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason
        self.rule = rule
        self.request_id = request_id


class GovernedCaller:
    """The governed call path over one workspace's applied state."""

    def __init__(
        self,
        root: Path,
        *,
        connectors: Connectors,
        clock: Clock = SYSTEM,
        actor: str = "gateway",
        metrics: Recorder | None = None,
        egress: Mapping[str, Any] | None = None,
    ) -> None:
        """`egress`: options for the egress proxies (`egress.pool.ProxyPool`: a resolver,
        time caps; tests)."""
        db = StateDB.open(root, create=False)
        if db is None:
            raise ClonedError(
                f"{root}: no state database: nothing is applied here",
                hint="run `cloned apply` first",
            )
        self.root = root
        self.actor = actor
        self._db = db
        self._connectors = connectors
        self._clock = clock
        self._view: AppliedView | None = None
        self._sink = AuditSink(root, db)
        self._seen = -1  # the state database's data_version when the view was last checked
        self._pins = PinGuard()
        self._admitter = Admitter(root, db, clock, actor)
        self._verified: dict[str, _Verified] = {}
        self._egress: ProxyPool | None = None
        self._egress_options = dict(egress or {})
        # OpenTelemetry when installed and asked for (governed.metrics), else nothing.
        self._metrics = metrics if metrics is not None else from_environment()

    def view(self) -> AppliedView:
        """The applied view, read again whenever the applied state changed."""
        # data_version moves only when another connection committed (an apply, another
        # gateway's call): until it does, nothing applied can have changed, and checking it
        # costs microseconds where the digest costs two queries and a hash. Read before the
        # digest, so a commit in between is seen by the next call.
        version = self._db.data_version()
        if self._view is not None and version == self._seen:
            return self._view
        current = applied_digest(self._db)
        if self._view is None or self._view.digest != current:
            self._view = read_applied(self._db)
        self._seen = version
        return self._view

    def redactor(self, view: AppliedView) -> Redactor:
        """The process's redactor with the active policy's patterns."""
        redactor = active()
        redactor.add_patterns(view.policy.redaction_patterns)
        return redactor

    async def call(self, request: CallRequest) -> CallOutcome:
        """Make one call under governance (see the module for the order of checks)."""
        call = _Call(request, time.perf_counter())
        view = self.view()
        redactor = self.redactor(view)
        try:
            outcome = await self._governed(call, view, redactor)
        except _Stop as stop:
            outcome = self._stopped(call, stop)
        except RuntimeFailure as exc:
            reason = redactor.text(exc.message)
            outcome = self._stopped(call, _Stop("failed", reason, f"runtime {exc.kind}"))
        event = called_event(call.request, outcome, self.actor, redactor, call.audited)
        call.writes.insert(0, event)
        self._metrics.record(
            connector=call.request.connector,
            tool=call.request.tool,
            decision=outcome.decision,
            latency_ms=outcome.latency_ms,
        )
        await self._sink.commit(call.writes)
        return outcome

    async def _governed(self, call: _Call, view: AppliedView, redactor: Redactor) -> CallOutcome:
        request = call.request
        try:
            canonical = canonical_json(request.arguments)
        except (TypeError, ValueError, RecursionError):
            # RecursionError: a pipeline step's arguments may be a connector's nested output.
            raise _Stop("refused", "the arguments are not plain JSON data", "arguments") from None
        # Serialized once: the digest, the audited size and the approval summary share it.
        call.args_digest = digest_of(canonical)
        call.audited = audited_arguments(request.arguments, redactor, len(canonical))
        connector = _applied(view, request.connector)
        rule = view.allowed(connector, request.tool)
        if rule is not None:
            raise _Stop("refused", f"{_public(request)} is not allowed ({rule})", rule)
        pin = connector.pins().get(request.tool)
        if pin is None:
            raise _Stop(
                "refused",
                f"{_public(request)} is not pinned: it was not listed when the connector was "
                "approved; run `cloned plan --refresh` to review it",
                "pin",
            )
        launch = await self._launch(connector, view)
        await self._check_listing(call, connector, launch, redactor)
        self._announce(call, connector, redactor)
        definition = pin.get("definition") or {}
        problem = arguments.problem(pin["digest"], definition.get("inputSchema"), request.arguments)
        if problem is not None:
            raise _Stop("refused", problem, "inputSchema")
        subject = approval.CallSubject(
            view.workspace, connector.name, request.tool, call.args_digest, pin["digest"], ()
        )
        shown = approval.summary(
            subject,
            arguments=call.audited,
            via=request.via,
            public=_public(request),
        )
        admitted = await self._admitter.admit(
            view,
            connector,
            subject,
            redactor,
            wait=request.wait,
            shown=shown,
            pipeline=request.pipeline,
        )
        if isinstance(admitted, Refusal):
            raise _Stop(admitted.decision, admitted.reason, admitted.rule, admitted.request_id)
        call.admission = admitted
        return await self._make(call, connector, launch, redactor)

    async def _launch(self, connector: AppliedConnector, view: AppliedView) -> Launch:
        """The connector's Launch, its installed files re-verified whenever a start may follow,
        with its egress proxy listening under the applied rules before it can start.

        Verifying re-hashes every installed file (a pypi connector's environment holds
        thousands: about 100 ms), so it is done once per process the connector runs as: again
        when no process verified under this applied state is running (a start, or a restart
        after a crash, may follow) and never while that one keeps serving, whose code is
        already loaded from the files verified before it started."""
        assert connector.install is not None
        applied = view.digest
        running = self._connectors.status(connector.name).pid
        held = self._verified.get(connector.name)
        if held is not None and held.applied == applied and running is not None:
            if held.pid is None:
                held.pid = running  # the process started from the files verified last
            if held.pid == running:
                return held.start.launch
        sandbox = connector.spec.sandbox
        try:
            proxy = await self._proxy(connector, view)
        except ClonedError as exc:
            reason = f"connector {connector.name}: its egress proxy did not start: {exc.message}"
            raise _Stop("failed", reason, f"connector.{connector.name} egress") from None
        try:
            grants = self._grants(connector, view)
            start = start_of(
                self.root,
                connector.name,
                connector.package,
                connector.install,
                sandbox,
                proxy=proxy,
                grants=grants,
            )
        except SandboxRefused as exc:
            self._verified.pop(connector.name, None)
            raise _Stop("refused", exc.message, f"connector.{connector.name} sandbox") from None
        except GrantRefused as exc:  # delivering a granted secret file was refused
            self._verified.pop(connector.name, None)
            reason = f"connector {connector.name} not started: {exc.message}"
            raise _Stop("refused", reason, f"connector.{connector.name} secrets") from None
        except ClonedError as exc:
            self._verified.pop(connector.name, None)
            raise _Stop("refused", exc.message, "package") from None
        announced = held.announced if held is not None else None
        granted = held.granted if held is not None else None
        self._verified[connector.name] = _Verified(applied, start, running, announced, granted)
        return start.launch

    def _grants(self, connector: AppliedConnector, view: AppliedView) -> Grants:
        """The secrets this start of the connector receives, read from the vault now;
        `_Stop` when one is not granted or the vault cannot give it (fail closed)."""
        from reconciler.home import cloned_home
        from reconciler.providers.grants import read_grants
        from reconciler.vault.types import VaultError

        declared = (connector.package.get("declared") or {}).get("secrets") or []
        try:
            return read_grants(
                self.root,
                connector.name,
                connector.spec.secrets,
                declared,
                view.secret_refs,
                workspace=view.workspace,
                workspace_spec=view.workspace_spec,
                home=cloned_home(),
            )
        except (GrantRefused, VaultError) as exc:
            reason = f"connector {connector.name} not started: {exc.message}"
            raise _Stop("refused", reason, f"connector.{connector.name} secrets") from None

    async def _proxy(self, connector: AppliedConnector, view: AppliedView) -> Path | None:
        """The socket of the connector's egress proxy, started or restarted with its applied
        rules (None for profile `none`, which gets no proxy). One pool per caller: its
        connections are audited as `egress.connection` through this caller's sink."""
        if connector.spec.sandbox.profile == "none":
            return None
        if self._egress is None:
            from reconciler.egress.pool import ProxyPool
            from reconciler.governed.egress import audit_connections

            self._egress = ProxyPool(
                self.root,
                on_connection=audit_connections(self._sink, self.redactor(view), actor=self.actor),
                **self._egress_options,
            )
        from reconciler.governed.egress import rules_for

        return await self._egress.ensure(connector.name, rules_for(view, connector.name))

    def _announce(self, call: _Call, connector: AppliedConnector, redactor: Redactor) -> None:
        """For each process started: one `secret.granted` event when it was handed secrets,
        and one `connector.unsandboxed` event when it runs without isolation."""
        held = self._verified.get(connector.name)
        pid = self._connectors.status(connector.name).pid
        if held is None or pid is None:
            return
        grants = held.start.grants
        if grants is not None and grants.granted and held.granted != pid:
            held.granted = pid
            payload = grants.payload(connector.name)
            call.writes.append(granted_event(connector.name, payload, self.actor, redactor))
        if not held.start.confinement.sandboxed and held.announced != pid:
            held.announced = pid
            call.writes.append(
                unsandboxed_event(connector.name, held.start.confinement, self.actor, redactor)
            )

    async def _check_listing(
        self, call: _Call, connector: AppliedConnector, launch: Launch, redactor: Redactor
    ) -> None:
        """Refuse a tool whose live definition is not the pinned one (rug pull)."""
        async with self._pins.lock(connector.name):
            observed: Observed | None = self._pins.current(
                connector, self._connectors.status(connector.name)
            )
            if observed is None:
                live = await self._connectors.list_tools(launch)
                status = self._connectors.status(connector.name)
                observed, fresh = self._pins.observe(connector, status, live)
                if fresh:
                    call.writes += drift_writes(connector, observed, live, self.actor, redactor)
                elif not observed.drift:
                    stored = listings.get(self._db, f"connector.{connector.name}")
                    call.writes += settled_writes(connector, stored, live, redactor)
        reason = refusal(observed, connector.name, call.request.tool)
        if reason is not None:
            raise _Stop("refused", reason, "pin")

    async def _make(
        self, call: _Call, connector: AppliedConnector, launch: Launch, redactor: Redactor
    ) -> CallOutcome:
        """The call itself, in a concurrency slot, with the connector's timeout."""
        admission = call.admission
        assert admission is not None
        limits = connector.spec.limits
        pool = await self._admitter.slots.acquire(
            connector.name, limits.concurrency, limits.timeout_seconds
        )
        if pool is None:
            self._admitter.give_back(admission)
            call.admission = None
            raise _Stop(
                "refused",
                f"connector {connector.name} is busy: all {limits.concurrency} of its "
                f"concurrent calls (limits.concurrency) stayed taken for "
                f"{limits.timeout_seconds:g} s",
                f"connector.{connector.name} limits.concurrency",
            )
        began = time.monotonic()
        try:
            result = await self._connectors.call_tool(
                launch, call.request.tool, call.request.arguments, timeout=limits.timeout_seconds
            )
        except RuntimeFailure as exc:
            call.writes += self._admitter.after(admission, time.monotonic() - began)
            reason = redactor.text(exc.message)
            raise _Stop("failed", reason, f"runtime {exc.kind}", admission.request_id) from None
        finally:
            pool.release()
        call.writes += self._admitter.after(admission, time.monotonic() - began)
        content, structured, size, capped = result_of(result, redactor)
        return CallOutcome(
            decision="allowed",
            content=content,
            structured=structured,
            is_error=result.is_error or capped is not None,
            rule=admission.rule,
            reason=capped,
            request_id=admission.request_id,
            latency_ms=self._elapsed(call),
            args_digest=call.args_digest,
            result_bytes=size,
        )

    def _stopped(self, call: _Call, stop: _Stop) -> CallOutcome:
        return CallOutcome(
            decision=stop.decision,
            content=({"type": "text", "text": stop.reason},),
            structured=None,
            is_error=True,
            rule=stop.rule,
            reason=stop.reason,
            request_id=stop.request_id,
            latency_ms=self._elapsed(call),
            args_digest=call.args_digest,
        )

    def _elapsed(self, call: _Call) -> float:
        return round((time.perf_counter() - call.started) * 1000, 3)

    async def aclose(self) -> None:
        """Close the egress proxies, commit the audit events still waiting, then close the
        state database."""
        if self._egress is not None:
            await self._egress.aclose()
        await self._sink.aclose()
        self._db.close()


def _applied(view: AppliedView, name: str) -> AppliedConnector:
    connector = view.connectors.get(name)
    if connector is None:
        raise _Stop("refused", f"no connector {name!r} is applied", "connector")
    if not connector.spec.enabled:
        raise _Stop("refused", f"connector {name} is disabled", f"connector.{name} enabled")
    if connector.install is None:
        raise _Stop("refused", f"connector {name} is not installed; run `cloned apply`", "install")
    return connector


def _public(request: CallRequest) -> str:
    return f"{request.connector}__{request.tool}"
