"""The inert renderings (reconciler.cli.inert), the diff view and the JSON-error switch, alone."""

from __future__ import annotations

import sys
import unicodedata

from reconciler.cli import inert
from reconciler.cli.diffview import diff_lines
from reconciler.cli.main import asks_for_json


def test_markdown_cells_and_summaries_escape_html_and_pipes() -> None:
    assert inert.markdown("a|b <i>*x*</i> `c` [l](u) # $m$") == (
        "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt; \\`c\\` \\[l\\](u) # \\$m\\$"
    )
    assert inert.markdown("# heading") == "\\# heading"
    assert inert.code("a`b|c", cell=True) == "``a`b\\|c``"
    assert inert.html('</summary><b>"x"</b>\n') == (
        "&lt;/summary&gt;&lt;b&gt;&quot;x&quot;&lt;/b&gt;\\n"
    )
    assert inert.text("a\tb\x00\x1b\x7f\x85\u2028\u2066\ufeff\U000e0041é✅") == (
        "a\\tb\\x00\\x1b\\x7f\\x85\\u2028\\u2066\\ufeff\\U000e0041é✅"
    )


def test_every_control_or_invisible_character_is_escaped() -> None:
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            assert inert.text(char) != char, f"U+{point:04X} is printed raw"
        elif unicodedata.category(char)[0] not in "CZ":
            assert inert.text(char) == char, f"U+{point:04X} is escaped needlessly"


def test_long_changed_strings_keep_the_differing_part() -> None:
    before = "a" * 300 + "OLD" + "z" * 300
    after = "a" * 300 + "NEW" + "z" * 300
    (line,) = diff_lines({"diff": [{"path": "spec.description", "before": before, "after": after}]})
    assert "OLD" in line and "NEW" in line
    assert "…(277 chars)…" in line
    scalars = diff_lines(
        {"diff": [{"path": "spec.hosts", "before": ["a", "b", "c"], "after": ["a", "x", "c", "d"]}]}
    )
    assert scalars == ['~ spec.hosts[1]: "b" -> "x"', '+ spec.hosts[3]: "d"']
    removed = diff_lines({"diff": [{"path": "spec.l", "before": [1, 2, 3], "after": [1, 3]}]})
    assert removed == ["- spec.l[1]: 2"]


def test_json_is_asked_for_by_flag_not_by_value() -> None:
    assert asks_for_json(["plan", "--json"]) is True
    assert asks_for_json(["plan", "--format=json"]) is True
    assert asks_for_json(["plan", "--format", "json"]) is True
    assert asks_for_json(["plan", "--format", "markdown"]) is False
    assert asks_for_json(["approvals", "approve", "x", "--comment", "--", "--json"]) is False
