"""Typed data after loading: each resource's model next to its dict, built lazily, and the
typed model of an applied state (what the engine reads applied Workspace fields from)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.approvals.validity import Approver, approvers_of
from reconciler.errors import ClonedError
from reconciler.load.typed import applied_model, document_model
from reconciler.load.workspace import load_desired_state
from reconciler.model.kinds import KINDS, PolicyPack
from reconciler.model.workspace import Workspace
from tests.conftest import PUBLIC_KEY, QUICKSTART, REPO, WORKSPACE_YAML, write

NORMALISED = {"mode": "json", "by_alias": True, "exclude_none": True}


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    root = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART / ".cloned", root / ".cloned")
    return root


def test_each_resource_keeps_its_dict_and_gives_the_kinds_model(quickstart: Path) -> None:
    state = load_desired_state(quickstart)
    assert len(state.resources) == 13
    for resource in state.resources:
        before = json.dumps(resource.data, sort_keys=True)
        model = resource.model
        assert type(model) is KINDS[resource.kind]
        assert (model.kind, model.metadata.name) == (resource.kind, resource.name)
        # The model says what the dict says; the dict, which digests are made of, is untouched.
        assert model.model_dump(**NORMALISED) == resource.data
        assert json.dumps(resource.data, sort_keys=True) == before


def test_the_model_is_built_on_first_access_and_then_kept(quickstart: Path) -> None:
    state = load_desired_state(quickstart)
    assert all("model" not in vars(resource) for resource in state.resources)
    first = state.resources[0]
    model = first.model
    assert vars(first)["model"] is model and first.model is model
    assert all("model" not in vars(resource) for resource in state.resources[1:])


def test_the_desired_workspace_reads_typed_fields(quickstart: Path) -> None:
    workspace = load_desired_state(quickstart).workspace()
    assert isinstance(workspace, Workspace)
    assert workspace.metadata.name == "quickstart"
    assert workspace.spec.policy_packs == ["baseline", "research-overlay"]
    assert workspace.spec.git.author is not None
    assert workspace.spec.git.author.email == "cloned@example.com"
    assert approvers_of(workspace)["demo"].groups == ("admins", "security")


def test_a_cache_hit_load_builds_no_model_and_imports_no_pydantic(quickstart: Path) -> None:
    load_desired_state(quickstart)  # fills the cache
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from reconciler.load.workspace import load_desired_state\n"
        f"state = load_desired_state(Path({str(quickstart)!r}))\n"
        "assert state.cache_hits == state.files == 8, (state.cache_hits, state.files)\n"
        "assert not any('model' in vars(r) for r in state.resources)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'ruamel')\n"
        "    or m in ('reconciler.model.base', 'reconciler.model.kinds'))\n"
        "print(loaded)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


def test_reading_the_workspace_builds_the_workspace_models_alone(quickstart: Path) -> None:
    # What every plan does: the other seven kinds' models are not built for it.
    load_desired_state(quickstart)  # fills the cache
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from reconciler.load.typed import applied_model\n"
        "from reconciler.load.workspace import load_desired_state\n"
        f"workspace = load_desired_state(Path({str(quickstart)!r})).workspace()\n"
        "state = workspace.model_dump(mode='json', by_alias=True, exclude_none=True)\n"
        "assert applied_model('Workspace', 'quickstart', state) == workspace\n"
        "print(sorted(m for m in sys.modules if m.startswith('reconciler.model.')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    modules = ["base", "builtins", "names", "workspace"]
    assert found.stdout.strip() == str([f"reconciler.model.{name}" for name in modules])


def test_the_one_workspace_is_required(tmp_path: Path) -> None:
    write(tmp_path, ".cloned/workspace.yaml", WORKSPACE_YAML)
    state = load_desired_state(tmp_path)
    empty = type(state)(root=state.root, resources=(), files=0, cache_hits=0)
    with pytest.raises(ClonedError, match="no Workspace resource: exactly one is required"):
        empty.workspace()


# --- applied states ------------------------------------------------------------------------------


def applied_workspace(**spec: Any) -> dict[str, Any]:
    """An applied Workspace's state as the state database and cloned.lock record it."""
    return {"metadata": {"labels": {"team": "a"}, "annotations": {}}, "spec": spec}


def test_an_applied_state_becomes_the_kinds_model() -> None:
    approvers = [{"name": "alice", "publicKey": PUBLIC_KEY, "groups": ["admins"]}]
    state = applied_workspace(
        policyPacks=["baseline"], approvers=approvers, git={"auditCommits": False}
    )
    workspace = applied_model("Workspace", "demo", state)
    assert isinstance(workspace, Workspace)
    assert workspace.metadata.name == "demo" and workspace.metadata.labels == {"team": "a"}
    assert workspace.spec.git.audit_commits is False and workspace.spec.git.author is None
    assert approvers_of(workspace) == {"alice": Approver("alice", PUBLIC_KEY, ("admins",))}
    pack = applied_model("PolicyPack", "house", {"metadata": {}, "spec": {"extends": "baseline"}})
    assert isinstance(pack, PolicyPack) and pack.spec.extends == "baseline"


def test_an_applied_state_that_no_longer_validates_is_a_clear_error() -> None:
    state = applied_workspace(approvers=[{"name": "alice", "publicKey": "nope", "groups": ["a"]}])
    with pytest.raises(ClonedError) as raised:
        applied_model("Workspace", "demo", state, source="the applied state (cloned.lock)")
    message = raised.value.message
    assert message.startswith("workspace.demo in the applied state (cloned.lock): ")
    assert "does not validate as a Workspace" in message
    # Worded as loading words the same problem in a file.
    assert 'spec.approvers[0].publicKey: "nope" is not valid: expected an OpenSSH' in message


@pytest.mark.parametrize("state", [{}, {"spec": {}}, {"metadata": [], "spec": {}}, []])
def test_an_applied_state_of_the_wrong_shape_is_a_clear_error(state: Any) -> None:
    with pytest.raises(ClonedError, match=r"^workspace\.demo in the applied state: not a resource"):
        applied_model("Workspace", "demo", state)


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ClonedError, match=r"^gadget\.x in the applied state: unknown kind"):
        applied_model("Gadget", "x", {"metadata": {}, "spec": {}})
    with pytest.raises(ClonedError, match="here: unknown kind 'Gadget'"):
        document_model({"kind": "Gadget"}, where="here")
