"""Tool-definition pins: what apply records of a connector's tools, and how a live listing is
compared with it (docs/gateway.md, "Pins").

A pin is the sha256 of the RFC 8785 canonical JSON of the fields an agent's model reads (name,
title, description, input and output schema, annotations), plus the digest of the set of tool
names, so a rename is a change as much as an edit. The pinned definition itself is kept beside
its digest: a plan shows the whole new description and the schema fields that changed, and the
gateway serves the pinned definition, never a live one. Pure functions over wire JSON.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import rfc8785

from reconciler.errors import ClonedError

PINNED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_TOOLS = 500
MAX_DEFINITION_BYTES = 256 * 1024

# Phrases aimed at the model rather than describing the tool (tool poisoning): told to the
# reviewer in the plan, never acted on. Each is (what the reviewer reads, the pattern).
_INSTRUCTIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for label, pattern in (
        (
            "tells the model to ignore its instructions",
            r"\b(ignore|disregard|forget)\b.{0,40}\b(instruction|prompt|rule|guideline)s?\b",
        ),
        (
            "tells the model to keep something from the user",
            r"\b(do not|don't|never)\b.{0,30}\b(tell|mention|reveal|show|inform)\b.{0,30}\buser\b",
        ),
        (
            "addresses the model with a hidden-instruction tag",
            r"<\s*/?\s*(important|system|instructions?|secret|hidden)\s*>",
        ),
        (
            "asks for files outside the tool's job (keys, credentials)",
            r"(~/\.ssh|id_rsa|id_ed25519|\.aws/credentials|\.netrc|/etc/passwd|\.env\b)",
        ),
        (
            "tells the model what to do before or instead of using the tool",
            r"\b(before|instead of)\b.{0,20}\b(using|calling)\b.{0,30}\b(this|any|the other)\b"
            r".{0,20}\btools?\b.{0,40}\b(must|always|first)\b",
        ),
        ("mentions the system prompt", r"\bsystem\s+prompt\b"),
        (
            "asks to send data to a third party",
            r"\b(send|forward|upload|exfiltrate|post)\b.{0,40}\b(to|at)\b.{0,20}"
            r"(https?://|\b[a-z0-9-]+\.[a-z]{2,}\b)",
        ),
    )
)


class ListingRefused(ClonedError):
    """A server's tool listing that cannot be pinned (duplicate or malformed names, too big)."""


@dataclass(frozen=True)
class ToolDrift:
    """How one tool of a live listing differs from its pin."""

    name: str
    status: Literal["same", "changed", "new", "removed"]


def definition_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The pinned fields of one tool from a listing (wire JSON), absent or null ones left out."""
    return {key: tool[key] for key in PINNED_FIELDS if tool.get(key) is not None}


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of `value`."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ListingRefused(f"a tool definition is not canonical JSON: {exc}") from None


def definition_digest(definition: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of a definition's RFC 8785 form: what a pin holds."""
    return "sha256:" + hashlib.sha256(canonical(dict(definition))).hexdigest()


def set_digest(names: Iterable[str]) -> str:
    """The digest of a set of tool names (a rename or a new tool changes it)."""
    return "sha256:" + hashlib.sha256(canonical(sorted(set(names)))).hexdigest()


def flags(definition: Mapping[str, Any]) -> list[str]:
    """What a reviewer should look at twice in a definition: control characters, invisible
    Unicode, and text aimed at the model. Every string in it is read (schemas included)."""
    found: list[str] = []
    for where, text in _strings(definition, ""):
        for problem in _text_flags(text):
            entry = f"{where or 'definition'}: {problem}"
            if entry not in found:
                found.append(entry)
    return found


def _strings(node: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(str(key), f"{where}.{key}" if where else str(key))
            yield from _strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}[{index}]")


def _text_flags(text: str) -> list[str]:
    problems: list[str] = []
    controls = sorted({c for c in text if _is_control(c)})
    if controls:
        problems.append("control characters " + ", ".join(f"U+{ord(c):04X}" for c in controls))
    hidden = sorted({c for c in text if _is_invisible(c)})
    if hidden:
        problems.append("invisible characters " + ", ".join(f"U+{ord(c):04X}" for c in hidden))
    visible = "".join(c for c in text if not _is_invisible(c))
    mixed = _mixed_words(visible)
    if mixed:
        shown = ", ".join(repr(word) for word in mixed[:3])
        problems.append(f"look-alike letters of another script inside a word ({shown})")
    folded = _folded(visible)
    problems.extend(label for label, pattern in _INSTRUCTIONS if pattern.search(folded))
    return problems


# Letters of these scripts look like Latin ones ("ign\u043ere": a Cyrillic o): a word that mixes
# them with Latin letters is written to get past a reader or a pattern, never by a person.
_LOOKALIKE_SCRIPTS = frozenset({"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
# Pairs of (look-alike, the Latin letter it imitates): Cyrillic, Greek, then Armenian.
_LOOKALIKES = (
    "\u0430a\u0435e\u0456i\u0458j\u043eo\u0440p\u0441c\u0443y\u0445x\u0455s\u0501d\u051bq"
    "\u051dw\u04cfl\u04bbh\u050cG\u0410A\u0412B\u0415E\u041aK\u041cM\u041dH\u041eO\u0420P"
    "\u0421C\u0422T\u0425X\u0406I\u0408J\u0405S\u03b1a\u03bfo\u03c1p\u03b9i\u03c5u\u03bdv"
    "\u03bak\u03c4t\u03c7x\u03b5e\u0391A\u0392B\u0395E\u0396Z\u0397H\u0399I\u039aK\u039cM"
    "\u039dN\u039fO\u03a1P\u03a4T\u03a5Y\u03a7X\u0585o\u057du\u0581g\u0570h\u0578n\u056cl"
)
_CONFUSABLES = str.maketrans(
    {_LOOKALIKES[i]: _LOOKALIKES[i + 1] for i in range(0, len(_LOOKALIKES), 2)}
)
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def _letters(text: str) -> str:
    """`text` compatibility-decomposed (fullwidth and mathematical letters become plain ones)
    without its combining marks (a strike-through mark inside a word hides it from a pattern)."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn"
    )


def _mixed_words(text: str) -> list[str]:
    """The words of `text` that mix Latin letters with look-alike letters of another script."""
    found = []
    for word in _WORD.findall(_letters(text)):
        scripts = {unicodedata.name(c, "").split(" ")[0] for c in word if c.isalpha()}
        if "LATIN" in scripts and scripts & _LOOKALIKE_SCRIPTS and word not in found:
            found.append(word)
    return found


def _folded(text: str) -> str:
    """What the instruction patterns read: plain letters, look-alikes as the Latin letters they
    imitate, and every run of white space (a line break between two words) as one space."""
    return _SPACE.sub(" ", _letters(text).translate(_CONFUSABLES))


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" and char not in "\n\t"


def _is_invisible(char: str) -> bool:
    # Format characters (zero-width, bidi overrides, the tag block), variation selectors and
    # private-use code points: text a reviewer cannot see but a model reads.
    category = unicodedata.category(char)
    code = ord(char)
    return (
        category in ("Cf", "Co")
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or char in "\u115f\u1160\u3164\uffa0"
    )


def check_listing(tools: Sequence[Mapping[str, Any]], *, where: str) -> None:
    """Refuse a listing that cannot be pinned: too many tools, a name that is not an MCP tool
    name or is listed twice, a definition too large to review."""
    if len(tools) > MAX_TOOLS:
        raise ListingRefused(f"{where}: lists {len(tools)} tools (at most {MAX_TOOLS})")
    seen: set[str] = set()
    for tool in tools:
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ListingRefused(f"{where}: a tool name {str(name)[:80]!r} is not a valid name")
        if name in seen:
            raise ListingRefused(f"{where}: lists the tool {name!r} twice")
        seen.add(name)
        if len(canonical(definition_of(tool))) > MAX_DEFINITION_BYTES:
            raise ListingRefused(f"{where}: the definition of {name!r} is over 256 KiB")


def tools_block(tools: Sequence[Mapping[str, Any]], *, where: str) -> dict[str, Any]:
    """The `tools` block a Connector's state records for a listing: the tool names and their
    set digest and, per tool, its pin digest, its definition and what is flagged in it."""
    check_listing(tools, where=where)
    pins: dict[str, Any] = {}
    for tool in tools:
        definition = definition_of(tool)
        pin: dict[str, Any] = {
            "digest": definition_digest(definition),
            "definition": definition,
        }
        flagged = flags(definition)
        if flagged:
            pin["flags"] = flagged
        pins[str(tool["name"])] = pin
    block: dict[str, Any] = {
        "names": sorted(pins),
        "set": set_digest(pins),
        "pins": dict(sorted(pins.items())),
    }
    flagged_names = sorted(name for name, pin in pins.items() if pin.get("flags"))
    if flagged_names:
        block["flagged"] = flagged_names
    return block


def compare(pinned: Mapping[str, Any] | None, live: Sequence[Mapping[str, Any]]) -> list[ToolDrift]:
    """Each tool of a pinned `tools` block and of a live listing, with how it differs."""
    pins: Mapping[str, Any] = (pinned or {}).get("pins") or {}
    found: list[ToolDrift] = []
    live_names: set[str] = set()
    for tool in live:
        name = str(tool.get("name"))
        live_names.add(name)
        pin = pins.get(name)
        if pin is None:
            found.append(ToolDrift(name, "new"))
        elif definition_digest(definition_of(tool)) != pin.get("digest"):
            found.append(ToolDrift(name, "changed"))
        else:
            found.append(ToolDrift(name, "same"))
    found.extend(ToolDrift(name, "removed") for name in pins if name not in live_names)
    return sorted(found, key=lambda drift: drift.name)


def pinned_definition(block: Mapping[str, Any] | None, tool: str) -> dict[str, Any] | None:
    """The pinned definition of `tool`, when the block pins it."""
    pin = ((block or {}).get("pins") or {}).get(tool)
    return dict(pin["definition"]) if isinstance(pin, Mapping) else None
