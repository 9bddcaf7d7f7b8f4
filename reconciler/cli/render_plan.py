"""Plans for people: Terraform-style text (colour only on a terminal) and pull-request Markdown.

Both render the plan's JSON form, so a saved plan (`cloned show FILE`) looks exactly like the
plan that was saved.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
COLOURS = {"create": "32", "update": "33", "delete": "31", "replace": "35", "deny": "31"}
GITHUB_COMMENT_LIMIT = 65_536


def use_colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def value(item: Any, limit: int = 80) -> str:
    """A JSON value on one line, shortened."""
    text = json.dumps(item, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff_lines(change: dict[str, Any]) -> list[str]:
    """`+ path: value`, `~ path: before -> after`, `- path: value` for each changed field.

    On a create, empty values (defaults such as `[]` or `""`) are left out: they say nothing.
    """
    lines = []
    creating = change.get("action") == "create"
    for field in change["diff"]:
        if creating and field.get("after") in ("", [], {}):
            continue
        if "before" not in field:
            lines.append(f"+ {field['path']}: {value(field['after'])}")
        elif "after" not in field:
            lines.append(f"- {field['path']}: {value(field['before'])}")
        else:
            lines.append(f"~ {field['path']}: {value(field['before'])} -> {value(field['after'])}")
    return lines


def decision_text(change: dict[str, Any]) -> str:
    """`approval: baseline/budget-raise (1 from admins)`, `deny: strict/...`, or `auto`."""
    kind = change["decision"]
    if kind == "auto":
        return "auto"
    parts = []
    for rule in change["rules"]:
        if rule["decision"] != kind:
            continue
        needs = rule.get("approvals")
        if needs:
            extras = [
                w
                for w, on in (
                    ("distinct", needs["distinct"]),
                    ("not the author", needs["exclude_author"]),
                )
                if on
            ]
            tail = f", {', '.join(extras)}" if extras else ""
            parts.append(
                f"{rule['rule']} ({needs['count']} from {' or '.join(needs['groups'])}{tail})"
            )
        else:
            parts.append(rule["rule"])
    return f"{kind}: {'; '.join(parts)}"


def text(plan: dict[str, Any], *, colour: bool) -> str:
    """The plan as a person reads it in a terminal."""
    out = [_header(plan), ""]
    if not plan["changes"]:
        out.append("No changes. The actual state matches the desired state.")
    for change in plan["changes"]:
        action = change["action"]
        code = COLOURS["deny"] if change["decision"] == "deny" else COLOURS[action]
        head = f"  {SYMBOLS[action]} {change['address']}"
        out.append(
            _paint(head, code, colour) + f"  ({action}, risk {change['risk']}, {change['origin']})"
        )
        out.append(f"      decision: {decision_text(change)}")
        out.extend(f"      {line}" for line in diff_lines(change))
        out.append("")
    out.append(_summary(plan))
    if plan["unmanaged"]:
        out.append(
            "Not managed by this version of Cloned yet (validated, not planned): "
            + ", ".join(plan["unmanaged"])
        )
    return "\n".join(out)


def _header(plan: dict[str, Any]) -> str:
    source = {
        "state": "the state database",
        "lock": "the committed cloned.lock (no state database here)",
        "empty": "nothing applied yet (bootstrap)",
    }[plan["actual_source"]]
    targets = f"; targets: {', '.join(plan['targets'])}" if plan["targets"] else ""
    return (
        f"Cloned plan {_short(plan['plan_id'])}: desired state (.cloned/) "
        f"against {source}; policy from the {plan['policy_source']} state{targets}"
    )


def _summary(plan: dict[str, Any]) -> str:
    s = plan["summary"]
    return (
        f"Plan: {s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
        f"{s['replace']} to replace. Decisions: {s['auto']} auto, {s['approval']} need approval, "
        f"{s['deny']} denied."
    )


def markdown(plan: dict[str, Any], *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """One pull-request comment: summary tables, then a collapsible section per change."""
    head = [
        f"### Cloned plan `{_short(plan['plan_id'])}`",
        "",
        _summary(plan),
        "",
        "| decision | changes | | risk | changes |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    risks = {"low": 0, "medium": 0, "high": 0}
    for change in plan["changes"]:
        risks[change["risk"]] += 1
    s = plan["summary"]
    for (decision, count), (risk, risk_count) in zip(
        (("auto", s["auto"]), ("approval", s["approval"]), ("deny", s["deny"])),
        risks.items(),
        strict=True,
    ):
        head.append(f"| {decision} | {count} | | {risk} | {risk_count} |")
    head.append("")
    tail = []
    if plan["unmanaged"]:
        tail = [
            "",
            f"Not managed by this version yet: {', '.join(f'`{a}`' for a in plan['unmanaged'])}",
        ]
    body: list[str] = []
    used = len("\n".join(head + tail)) + 200
    for index, change in enumerate(plan["changes"]):
        section = _section(change)
        if used + len(section) > limit:
            remaining = len(plan["changes"]) - index
            body.append(
                f"\n_…and {remaining} more change{'s' if remaining != 1 else ''}, not shown: the "
                "comment would exceed GitHub's size limit. Run `cloned plan` to see them all._"
            )
            break
        body.append(section)
        used += len(section) + 1
    return "\n".join(head + body + tail) + "\n"


def _section(change: dict[str, Any]) -> str:
    lines = "\n".join(diff_lines(change)) or "(no field changes)"
    icon = {"auto": "✅", "approval": "🔐", "deny": "⛔"}[change["decision"]]
    return (
        f"<details><summary>{icon} <code>{SYMBOLS[change['action']]} {change['address']}</code> "
        f"{change['action']} · {decision_text(change)} · risk {change['risk']}</summary>\n\n"
        f"Origin: `{change['origin']}` · change `{_short(change['change_hash'])}`\n\n"
        f"```diff\n{lines}\n```\n</details>"
    )


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]
