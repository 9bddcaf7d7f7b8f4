"""Plans for people: Terraform-style text (colour only on a terminal) and pull-request Markdown.

Both render the typed plan document (reconciler.plan.document) that a fresh plan's JSON and a
saved plan file are both read into, so a saved plan (`cloned show FILE`) looks exactly like the
plan that was saved. Every string of it, ours or not, passes through `reconciler.cli.inert`: a
name, key, file name or value cannot move the cursor, reverse a line or open Markdown structure
(a saved plan file is the user's input as much as `.cloned/` is).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.cli import diffview, inert
from reconciler.plan.document import (
    Approvals,
    PinChanges,
    PlanDocument,
    PlannedChange,
    RevisionRef,
)

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
COLOURS = {"create": "32", "update": "33", "delete": "31", "replace": "35", "deny": "31"}
GITHUB_COMMENT_LIMIT = 65_536
MAX_APPROVAL_ROWS = 100  # keeps the approvals table well inside the comment limit


def use_colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def diff_lines(change: Mapping[str, Any]) -> list[str]:
    """A change's diff in its JSON form (an approval request's stored change), element by
    element (reconciler.cli.diffview); lines not yet inert."""
    return diffview.diff_lines(change)


def change_lines(change: PlannedChange) -> list[str]:
    """The change's diff, element by element (reconciler.cli.diffview); lines not yet inert."""
    return diffview.field_lines(change.diff, action=change.action)


def decision_text(change: PlannedChange) -> str:
    """`approval: baseline/budget-raise (1 from admins)`, `deny: strict/...`, or `auto`."""
    kind = change.decision.kind
    if kind == "auto":
        return "auto"
    parts = []
    for rule in change.decision.rules:
        if rule.decision != kind:
            continue
        needs = rule.requirement
        if needs:
            flags = (("distinct", needs.distinct), ("not the author", needs.exclude_author))
            extras = [word for word, on in flags if on]
            tail = f", {', '.join(extras)}" if extras else ""
            parts.append(f"{rule.id} ({needs.count} from {' or '.join(needs.groups)}{tail})")
        else:
            parts.append(rule.id)
    return f"{kind}: {'; '.join(parts)}"


def text(plan: PlanDocument, *, colour: bool) -> str:
    """The plan as a person reads it in a terminal; every line inert, colour added after."""
    out = [inert.text(_header(plan)), ""]
    if not plan.changes:
        out.append("No changes. The actual state matches the desired state.")
    for change in plan.changes:
        action = change.action
        code = COLOURS["deny"] if change.decision.kind == "deny" else COLOURS.get(action, "0")
        head = inert.text(f"  {SYMBOLS.get(action, '?')} {change.address}")
        tail = f"  ({action}, risk {change.risk}, {change.origin})"
        out.append(_paint(head, code, colour) + inert.text(tail))
        lines = [f"      decision: {decision_text(change)}"]
        if change.approvals is not None:
            lines.append(f"      approvals: {approvals_text(change.approvals)}")
        if change.in_branch is False:
            lines.append("      (not changed by this branch: already pending on the base)")
        if change.widens:
            lines.append(f"      widens: {widens_text(change.widens)}")
        lines.extend(f"      {line}" for line in pins_lines(change.pins))
        lines.extend(f"      {line}" for line in change_lines(change))
        out.extend(inert.text(line) for line in lines)
        out.append("")
    out.append(_summary(plan))
    if plan.unmanaged:
        out.append(
            inert.text(
                "Not managed by this version of Cloned yet (validated, not planned): "
                + unmanaged_text(plan.unmanaged, str)
            )
        )
    return "\n".join(out)


def pins_lines(pins: PinChanges | None) -> list[str]:
    """`tools: +alerts ~forecast -old` and one `! flagged` line per finding, for a reviewer."""
    if pins is None:
        return []
    moved = [f"+{n}" for n in pins.added] + [f"~{n}" for n in pins.changed]
    moved += [f"-{n}" for n in pins.removed]
    lines = [f"tools: {' '.join(moved)}"]
    for name, flags in pins.flagged.items():
        lines.extend(f"! flagged {name}: {flag}" for flag in flags)
    return lines


WIDENS_LABELS = {"tools": "tools", "egress_hosts": "egress hosts", "secrets": "secrets"}


def widens_text(widens: Mapping[str, tuple[str, ...]]) -> str:
    """`tools +between; egress hosts +api.example.com`: what a connector change adds."""
    return "; ".join(
        f"{WIDENS_LABELS.get(what, what)} " + " ".join(f"+{name}" for name in names)
        for what, names in widens.items()
    )


def approvals_text(approvals: Approvals) -> str:
    """`request 1a2b3c4d5e6f approved by alice`, `... pending: 1 more from admins`."""
    head = f"request {approvals.request}"
    if approvals.status == "approved":
        return f"{head} approved by {', '.join(approvals.approved_by)}"
    if approvals.status == "denied":
        return f"{head} denied by {', '.join(approvals.denied_by)}"
    have = f" (approved by {', '.join(approvals.approved_by)})" if approvals.approved_by else ""
    return f"{head} {approvals.status}{have}: needs {'; '.join(approvals.missing)}"


MAX_UNMANAGED_NAMED = 12


def unmanaged_text(addresses: Sequence[str], quote: Callable[[str], str]) -> str:
    """The addresses when few; else how many of each kind (a 10,000-resource workspace would
    otherwise print a page of names)."""
    if len(addresses) <= MAX_UNMANAGED_NAMED:
        return ", ".join(quote(a) for a in addresses)
    kinds: dict[str, int] = {}
    for address in addresses:
        kind = address.split(".", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    counts = ", ".join(f"{n:,} {quote(kind)}" for kind, n in sorted(kinds.items()))
    return f"{len(addresses):,} resources ({counts}); `cloned plan --json` lists them"


def _header(plan: PlanDocument) -> str:
    if plan.base is not None and plan.head is not None:
        return (
            f"Cloned plan {_short(plan.plan_id)}: {_rev(plan.head)} against "
            f"{_rev(plan.base)}: desired state from the first, applied state, policy and "
            "approvers from cloned.lock at the second"
        )
    source = {
        "state": "the state database",
        "lock": "the committed cloned.lock (no state database here)",
        "empty": "nothing applied yet (bootstrap)",
    }[plan.actual_source]
    targets = f"; targets: {', '.join(plan.targets)}" if plan.targets else ""
    return (
        f"Cloned plan {_short(plan.plan_id)}: desired state (.cloned/) "
        f"against {source}; policy from the {plan.policy_source} state{targets}"
    )


def _rev(rev: RevisionRef) -> str:
    short = rev.commit[:12]
    return short if rev.ref in (rev.commit, short) else f"{rev.ref} ({short})"


def _summary(plan: PlanDocument) -> str:
    s = plan.summary
    return (
        f"Plan: {s.create} to create, {s.update} to update, {s.delete} to delete, "
        f"{s.replace} to replace. Decisions: {s.auto} auto, {s.approval} need approval, "
        f"{s.deny} denied."
    )


def markdown(plan: PlanDocument, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """One pull-request comment: summary tables, then a collapsible section per change."""
    head = [
        f"### Cloned plan {inert.code(_short(plan.plan_id))}",
        "",
        _context(plan),
        "",
        _summary(plan),
        "",
        "| decision | changes | | risk | changes |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    risks = {"low": 0, "medium": 0, "high": 0}
    for change in plan.changes:
        if change.risk in risks:
            risks[change.risk] += 1
    s = plan.summary
    for (decision, count), (risk, risk_count) in zip(
        (("auto", s.auto), ("approval", s.approval), ("deny", s.deny)),
        risks.items(),
        strict=True,
    ):
        head.append(f"| {decision} | {count} | | {risk} | {risk_count} |")
    head.append("")
    head.extend(_approvals_table(plan))
    tail = []
    if plan.unmanaged:
        tail = [
            "",
            f"Not managed by this version yet: {unmanaged_text(plan.unmanaged, inert.code)}",
        ]
    body: list[str] = []
    used = len("\n".join(head + tail)) + 200
    for index, change in enumerate(plan.changes):
        section = _section(change)
        if used + len(section) > limit:
            remaining = len(plan.changes) - index
            body.append(
                f"\n_…and {remaining} more change{'s' if remaining != 1 else ''}, not shown: the "
                "comment would exceed GitHub's size limit. Run `cloned plan` to see them all._"
            )
            break
        body.append(section)
        used += len(section) + 1
    return "\n".join(head + body + tail) + "\n"


def _context(plan: PlanDocument) -> str:
    if plan.base is not None and plan.head is not None:
        return (
            f"{inert.code(_rev(plan.head))} against {inert.code(_rev(plan.base))}: policy "
            "and approvers from "
            "the base's `cloned.lock`, approvals from this branch."
        )
    return {
        "state": "Against the state database.",
        "lock": "Against the committed `cloned.lock` (no state database here).",
        "empty": "Nothing applied yet (bootstrap).",
    }[plan.actual_source]


def _approvals_table(plan: PlanDocument) -> list[str]:
    """Which gated changes are approved, by whom, and what is missing."""
    gated = [(c, c.approvals) for c in plan.changes if c.approvals is not None]
    if not gated:
        return []
    icons = {"approved": "✅", "denied": "⛔", "pending": "⏳", "expired": "⌛"}
    rows = [
        "**Approvals**",
        "",
        "| change | request | status | approved by | missing |",
        "| --- | --- | --- | --- | --- |",
    ]
    for change, a in gated[:MAX_APPROVAL_ROWS]:
        by = inert.markdown(", ".join(a.approved_by or a.denied_by)) or "—"
        missing = inert.markdown("; ".join(a.missing)) or "—"
        status = f"{icons.get(a.status, '')} {inert.markdown(a.status)}"
        address, request = (inert.code(change.address, cell=True), inert.code(a.request))
        rows.append(f"| {address} | {request} | {status} | {by} | {missing} |")
    if len(gated) > MAX_APPROVAL_ROWS:
        rows.append(f"| …and {len(gated) - MAX_APPROVAL_ROWS} more | | | | |")
    rows += [
        "",
        "Approve on this branch with "
        + inert.code(
            "cloned approvals approve REQUEST --key NAME"
            + (f" --base {plan.base.ref}" if plan.base is not None else "")
        )
        + ", then commit `.cloned/approvals/`.",
        "",
    ]
    return rows


def _section(change: PlannedChange) -> str:
    lines = change_lines(change) or ["(no field changes)"]
    icon = {"auto": "✅", "approval": "🔐", "deny": "⛔"}.get(change.decision.kind, "")
    note = " · already pending on the base" if change.in_branch is False else ""
    title = inert.html(f"{SYMBOLS.get(change.action, '?')} {change.address}")
    summary = inert.html(f"{change.action} · {decision_text(change)} · risk {change.risk}{note}")
    widened = f"Widens: {inert.markdown(widens_text(change.widens))}\n\n" if change.widens else ""
    pinned = pins_lines(change.pins)
    if pinned:
        widened += "".join(f"{inert.markdown(line)}  \n" for line in pinned) + "\n"
    return (
        f"<details><summary>{icon} <code>{title}</code> "
        f"{summary}</summary>\n\n"
        f"Origin: {inert.code(change.origin)} · change "
        f"{inert.code(_short(change.change_hash))}\n\n"
        f"{widened}"
        f"{inert.fence(lines, 'diff')}\n</details>"
    )


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]
