"""Builtin connectors: the committed digest manifest is current, a builtin is found and
verified by name, and a changed file is refused naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.packages import builtin
from reconciler.packages.refusal import PackageRefused
from tests.conftest import REPO


def test_the_committed_digest_manifest_is_current() -> None:
    current = (REPO / "connectors" / builtin.DIGESTS).read_text(encoding="utf-8")
    trees = builtin.compute(REPO / "connectors")
    assert current == builtin.render(trees, builtin.declared_of(REPO / "connectors", trees)), (
        "connectors/digests.json is stale: run `make schemas` and commit it"
    )
    assert builtin.main(["--check"]) == 0


def test_notes_is_located_and_verified() -> None:
    notes = builtin.verified("notes")
    assert notes.folder == builtin.builtins_root() / "notes"
    assert notes.manifest.publisher == "cloned" and notes.manifest.version == "0.1.0"
    assert notes.manifest.tools == ["add_note", "list_notes", "read_note"]
    assert notes.manifest.egress.hosts == [] and notes.manifest.secrets == []
    assert "CLONED_CONNECTOR_DATA" in notes.manifest.description
    assert notes.expected.startswith("sha256:")


def test_an_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(PackageRefused) as caught:
        builtin.locate("../notes")
    assert caught.value.reason == "not-found" and "the builtins: notes" in str(caught.value)


def copy_of_builtins(tmp_path: Path) -> Path:
    root = tmp_path / "connectors"
    shutil.copytree(REPO / "connectors", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_changed_or_added_file_is_tampered_and_named(tmp_path: Path) -> None:
    root = copy_of_builtins(tmp_path)
    assert builtin.verified("notes", root=root).expected == builtin.locate("notes").expected
    with (root / "notes" / "server.py").open("a") as handle:
        handle.write("# injected\n")
    (root / "notes" / "extra.py").write_text("import os\n")
    with pytest.raises(PackageRefused) as caught:
        builtin.verified("notes", root=root)
    assert caught.value.reason == "tampered"
    assert "changed: server.py" in str(caught.value) and "unexpected: extra.py" in str(caught.value)


def test_a_damaged_digest_manifest_is_tampered(tmp_path: Path) -> None:
    root = copy_of_builtins(tmp_path)
    text = (root / builtin.DIGESTS).read_text()
    (root / builtin.DIGESTS).write_text(text.replace('"size": 4', '"size": 5', 1))
    with pytest.raises(PackageRefused) as caught:
        builtin.locate("notes", root=root)
    assert caught.value.reason == "tampered"
    (root / builtin.DIGESTS).unlink()
    with pytest.raises(PackageRefused) as caught:
        builtin.locate("notes", root=root)
    assert caught.value.reason == "tampered"


def test_a_manifest_naming_another_connector_is_a_mismatch(tmp_path: Path) -> None:
    root = copy_of_builtins(tmp_path)
    manifest = root / "notes" / "connector.yaml"
    manifest.write_text(manifest.read_text().replace("name: notes", "name: other"))
    (root / builtin.DIGESTS).write_text(builtin.render(builtin.compute(root), {}))
    with pytest.raises(PackageRefused) as caught:
        builtin.locate("notes", root=root)
    assert caught.value.reason == "manifest-mismatch"


def load_hook() -> type:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hook: type = module.DigestsHook
    return hook


def run_hook(root: Path) -> dict[str, dict[str, str]]:
    hook = load_hook()(str(root), {}, None, None, str(root / "dist"), "wheel")
    build_data: dict[str, dict[str, str]] = {"force_include": {}}
    hook.initialize("standard", build_data)
    return build_data


def test_the_build_hook_generates_digests_and_refuses_a_stale_copy(tmp_path: Path) -> None:
    copy_of_builtins(tmp_path)
    (generated,) = run_hook(tmp_path)["force_include"].items()
    assert generated[1] == "reconciler/_data/connectors/digests.json"
    assert Path(generated[0]).read_bytes() == (REPO / "connectors" / "digests.json").read_bytes()
    with (tmp_path / "connectors" / "notes" / "server.py").open("a") as handle:
        handle.write("# changed without `make schemas`\n")
    with pytest.raises(RuntimeError, match="stale"):
        run_hook(tmp_path)
