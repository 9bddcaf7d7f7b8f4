"""Builtin connectors: the first-party connectors shipped inside the wheel (the top-level
`connectors/` folder, `reconciler/_data/connectors/` once installed), each pinned by the tree
digest (`tree.py`) recorded in `digests.json` next to them.

`digests.json` is generated, never edited: the wheel's build hook (`hatch_build.py`) writes it
from the folders it packs and refuses to build when the committed copy is stale; in a source
checkout the committed copy is what `python -m reconciler.packages.builtin` (part of
`make schemas`) wrote, and a test fails when it drifts. A source `{builtin: NAME}` installs
through `verified(NAME)`, which refuses a folder whose files are not the ones recorded."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.data import data_dir
from reconciler.packages.refusal import PackageRefused
from reconciler.packages.tree import Tree, diff_trees, read_folder, tree_from_json

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest

DIGESTS = "digests.json"
DIGESTS_FORMAT = "cloned.builtin-digests/v1"
MANIFEST = "connector.yaml"


@dataclass(frozen=True)
class Builtin:
    """A builtin connector: its folder, the digest recorded at build time and its manifest."""

    name: str
    folder: Path
    expected: str
    manifest: Manifest


def builtins_root() -> Path:
    """The folder holding the builtin connectors and their `digests.json`."""
    return data_dir("connectors")


def compute(root: Path) -> dict[str, Tree]:
    """The Tree of every connector folder (one holding `connector.yaml`) in `root`."""
    return {
        folder.name: read_folder(folder)
        for folder in sorted(root.iterdir())
        if folder.is_dir() and (folder / MANIFEST).is_file()
    }


def render(trees: dict[str, Tree], declared: dict[str, dict[str, object]]) -> str:
    """The text of `digests.json` for these trees: each one's digest and file listing, and
    what its manifest declares (so a plan pins a builtin without parsing its YAML)."""
    body = {
        "format": DIGESTS_FORMAT,
        "connectors": {
            name: {**trees[name].to_json(), "declared": declared.get(name, {})}
            for name in sorted(trees)
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def declared_of(root: Path, trees: dict[str, Tree]) -> dict[str, dict[str, object]]:
    """What each builtin's manifest in `root` declares (parses the YAML: `make schemas`)."""
    from reconciler.packages.declared import declared_block

    return {name: declared_block(_manifest(root / name)) for name in trees}


def recorded_declared(text: str) -> dict[str, dict[str, object]]:
    """The declared blocks a `digests.json` text records (the wheel's build hook copies them:
    it runs without the libraries that parse manifests, and the tree digest, which covers
    `connector.yaml`, tells it when they are stale)."""
    entries = json.loads(text).get("connectors", {})
    return {str(name): dict(entry.get("declared") or {}) for name, entry in entries.items()}


def pinned(name: str) -> tuple[str, dict[str, object]]:
    """The recorded digest and declared block of builtin `name`, from `digests.json` alone:
    what a plan pins (install verifies the folder against it); unknown names are refused."""
    path = builtins_root() / DIGESTS
    try:
        entries = parse_json(path.read_bytes())["connectors"]
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise PackageRefused(
                "not-found", f"no builtin connector {name!r}; the builtins: {known}"
            )
        return str(entry["digest"]), dict(entry["declared"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PackageRefused("tampered", f"{path}: not a builtin digest manifest ({exc})") from None


def recorded(root: Path) -> dict[str, Tree]:
    """The trees `digests.json` in `root` records; a missing or damaged file is "tampered"."""
    path = root / DIGESTS
    try:
        data = parse_json(path.read_bytes())
        if data["format"] != DIGESTS_FORMAT:
            raise ValueError(f"format {data['format']!r}")
        return {str(k): tree_from_json(v) for k, v in data["connectors"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PackageRefused("tampered", f"{path}: not a builtin digest manifest ({exc})") from None


def locate(name: str, *, root: Path | None = None) -> Builtin:
    """The builtin called `name` (in `root`, by default the shipped folder), with its recorded
    digest and manifest, not yet verified; an unknown name is "not-found" and lists them."""
    root = builtins_root() if root is None else root
    trees = recorded(root)
    if name not in trees:
        known = ", ".join(sorted(trees)) or "none"
        raise PackageRefused("not-found", f"no builtin connector {name!r}; the builtins: {known}")
    folder = root / name
    manifest = _manifest(folder)
    if manifest.name != name:
        raise PackageRefused(
            "manifest-mismatch", f"{folder / MANIFEST}: names {manifest.name!r}, not {name!r}"
        )
    return Builtin(name=name, folder=folder, expected=trees[name].digest, manifest=manifest)


def _manifest(folder: Path) -> Manifest:
    from reconciler.errors import ValidationFailed
    from reconciler.load.manifest import read_manifest

    where = str(folder / MANIFEST)
    try:
        return read_manifest((folder / MANIFEST).read_bytes(), where)
    except OSError as exc:
        raise PackageRefused("tampered", f"{where}: {exc.strerror}") from None
    except ValidationFailed as exc:
        lines = "; ".join(f"{p.location()}: {p.message}" for p in exc.problems)
        raise PackageRefused("invalid-manifest", lines) from None


def verified(name: str, *, root: Path | None = None) -> Builtin:
    """`locate(name)`, refused as "tampered" (naming the files) unless its folder holds
    exactly the files recorded at build time."""
    builtin = locate(name, root=root)
    expected = recorded(builtin.folder.parent)[name]
    actual = read_folder(builtin.folder)
    if actual.digest != builtin.expected:
        changes = ", ".join(diff_trees(expected, actual))
        raise PackageRefused(
            "tampered", f"builtin connector {name}: not the files it was built with: {changes}"
        )
    return builtin


def main(argv: list[str]) -> int:
    """Write `connectors/digests.json` of the source checkout (`make schemas`); with
    `--check`, only say whether it is current (exit 1 when stale)."""
    root = Path(__file__).resolve().parents[2] / "connectors"
    trees = compute(root)
    text = render(trees, declared_of(root, trees))
    path = root / DIGESTS
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if "--check" in argv:
        if current != text:
            print(f"{path} is stale: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        write_atomic(path, text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
