"""`python -m reconciler.policy.packgen` (part of `make schemas`): regenerate the built-in
packs' JSON from their YAML sources."""

from __future__ import annotations

import sys

from reconciler.model.builtins import BUILTIN_POLICY_PACKS
from reconciler.policy.builtin import PACKS_DIR, render_json


def main() -> int:
    """Regenerate `packs/*.json` from the YAML sources; print which changed."""
    for name in BUILTIN_POLICY_PACKS:
        path = PACKS_DIR / f"{name}.json"
        text = render_json(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
