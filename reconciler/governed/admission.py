"""Admission of a governed call that passed the static checks: its per-call approval, the
budgets in scope and the rate windows, decided together.

Without budgets, gates or rate limits in scope nothing is written. Otherwise one `BEGIN
IMMEDIATE` transaction reads the budgets' use, opens or judges the call's approval request,
checks the rate windows (kept in the state database) and counts the call, so concurrent calls
(and other processes) cannot both take the last unit of a budget. The approval records a call
uses are spent in that same transaction, when the call is admitted: two concurrent identical
calls, in one process or two, cannot both use one approval (an admitted call that then fails
or finds no concurrency slot has used its approval all the same).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from reconciler.approvals.spent import spent_in
from reconciler.clock import Clock, stamp
from reconciler.governed import approval, budgets
from reconciler.governed.applied import AppliedBudget, AppliedConnector, AppliedView
from reconciler.governed.auditsink import Write
from reconciler.governed.limits import Rate, RateWindows, Slots
from reconciler.plan.types import RuleRef
from reconciler.redact import Redactor
from reconciler.state.db import StateDB

POLL_SECONDS = 0.1
"""How often a call that waits for its approval (`CallRequest.wait`) looks for the record."""


@dataclass(frozen=True)
class Refusal:
    """Why a call is not admitted: refused, or waiting for an approval."""

    decision: Literal["refused", "approval"]
    reason: str
    rule: str
    request_id: str | None = None


@dataclass(frozen=True)
class Admission:
    """An admitted call: what it counted, and the approval it spends once made."""

    rates: tuple[Rate, ...]
    admitted_at: float
    charge: budgets.Charge | None
    gated: approval.Gated | None

    @property
    def rule(self) -> str | None:
        """The approval rules that let this call through, if it needed an approval."""
        if self.gated is None:
            return None
        return ", ".join(rule.id for rule in self.gated.request.rules)

    @property
    def request_id(self) -> str | None:
        return self.gated.request.id if self.gated is not None else None


class _Abort(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class Admitter:
    """Admits calls for one `GovernedCaller` (see the module)."""

    def __init__(self, root: Path, db: StateDB, clock: Clock, actor: str) -> None:
        self._root = root
        self._db = db
        self._clock = clock
        self._actor = actor
        self._windows = RateWindows(clock)
        self.slots = Slots()

    async def admit(
        self,
        view: AppliedView,
        connector: AppliedConnector,
        subject: approval.CallSubject,
        redactor: Redactor,
        *,
        wait: float = 0.0,
        shown: dict[str, object] | None = None,
        pipeline: str | None = None,
    ) -> Admission | Refusal:
        """Admit one call, waiting up to `wait` seconds for its approval."""
        gate = approval.tool_gate(view, connector.name, subject.tool)
        gates = (gate,) if gate is not None else ()
        scoped = view.budgets_for(connector.name, pipeline)
        rates = tuple(rates_for(view, connector))
        deadline = time.monotonic() + wait
        while True:
            found = self._once(view, subject, gates, scoped, rates, redactor, shown or {})
            waiting = isinstance(found, Refusal) and found.decision == "approval"
            if not waiting or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _once(
        self,
        view: AppliedView,
        subject: approval.CallSubject,
        gates: tuple[RuleRef, ...],
        scoped: list[AppliedBudget],
        rates: tuple[Rate, ...],
        redactor: Redactor,
        shown: dict[str, object],
    ) -> Admission | Refusal:
        if not gates and not scoped and not rates:
            return Admission(rates, 0.0, None, None)
        try:
            with self._db.transaction() as connection:
                moment = self._clock.now()
                counted_at = moment.timestamp()
                over = budgets.exceeded(connection, scoped, moment)
                blocking = [o for o in over if o.budget.on_exceed == "block"]
                if blocking:
                    raise _Abort(Refusal("refused", blocking[0].reason, blocking[0].rule))
                all_gates = gates + tuple(approval.budget_gate(o) for o in over)
                gated = None
                if all_gates:
                    gated = approval.judge(
                        connection,
                        replace(subject, gates=all_gates),
                        root=self._root,
                        view=view,
                        shown=shown,
                        spent=spent_in(connection),
                        actor=self._actor,
                        at=stamp(moment),
                        now=moment,
                        redactor=redactor,
                    )
                    if gated.status != "approved":
                        return _approval_refusal(subject, gated)  # commits the request
                full = self._windows.full(connection, list(rates), counted_at)
                if full is not None:
                    raise _Abort(_rate_refusal(full))
                self._windows.admit(connection, list(rates), counted_at)
                charge = budgets.charge(connection, scoped, moment) if scoped else None
                if gated is not None:
                    # Spent here, not with the call's audit event: another process judging
                    # the same call after this commit must already see it used.
                    approval.spend(
                        connection, gated, actor=self._actor, at=stamp(moment), redactor=redactor
                    )
        except _Abort as abort:
            return abort.refusal
        return Admission(rates, counted_at, charge, gated)

    def give_back(self, admission: Admission) -> None:
        """Uncount an admitted call that was never made (no concurrency slot came free)."""
        if not admission.rates and admission.charge is None:
            return
        with self._db.transaction() as connection:
            self._windows.release(connection, list(admission.rates), admission.admitted_at)
            if admission.charge is not None:
                budgets.refund(connection, admission.charge)

    def after(self, admission: Admission, seconds: float) -> list[Write]:
        """The writes a made call adds to its audit transaction: its wall time."""
        charged = admission.charge
        if charged is None:
            return []
        wall_ms = max(0, round(seconds * 1000))
        return [lambda connection: budgets.charge_wall(connection, charged, wall_ms)]


def rates_for(view: AppliedView, connector: AppliedConnector) -> list[Rate]:
    """The rate windows a call of `connector` counts in."""
    found = []
    per_minute = connector.spec.limits.rate_per_minute
    if per_minute is not None:
        rule = f"connector.{connector.name} limits.ratePerMinute ({per_minute})"
        found.append(Rate(f"connector.{connector.name}", per_minute, 60.0, rule))
    policy = view.policy
    if policy.calls_per_minute is not None:
        rule = f"policy rateLimits.callsPerMinute ({policy.calls_per_minute})"
        found.append(Rate("workspace", policy.calls_per_minute, 60.0, rule))
    if policy.calls_per_hour is not None:
        rule = f"policy rateLimits.callsPerHour ({policy.calls_per_hour})"
        found.append(Rate("workspace", policy.calls_per_hour, 3600.0, rule))
    return found


def _rate_refusal(rate: Rate) -> Refusal:
    every = "minute" if rate.span == 60.0 else "hour"
    return Refusal(
        "refused",
        f"rate limit reached: at most {rate.limit} calls per {every} ({rate.rule})",
        rate.rule,
    )


def _approval_refusal(subject: approval.CallSubject, gated: approval.Gated) -> Refusal:
    request = gated.request
    public = f"{subject.connector}__{subject.tool}"
    rules = ", ".join(rule.id for rule in request.rules)
    if gated.status == "denied":
        reason = f"{public}: this exact call was denied (approval request {request.id}, {rules})"
        return Refusal("refused", reason, rules, request.id)
    lapsed = " (its approval expired)" if gated.status == "expired" else ""
    reason = (
        f"{public} needs an approval of this exact call{lapsed}: approval request "
        f"{request.id} ({rules}); once `cloned approvals approve {request.id} --key KEY` "
        "is done, make the same call again with the same arguments"
    )
    return Refusal("approval", reason, rules, request.id)
