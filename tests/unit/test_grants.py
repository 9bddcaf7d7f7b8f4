"""Which secrets a connector receives (reconciler/providers/grants.py `granted`): only those its
spec lists, its SecretRef grants and its manifest says how to take, never under a variable
Cloned sets itself, in any case."""

from __future__ import annotations

import pytest

from reconciler.model.kinds import SecretRefSpec
from reconciler.providers.grants import GrantRefused, granted

REFS = {
    "token": SecretRefSpec.model_validate(
        {"ref": "vault://gh-token", "usedBy": {"connectors": ["gh"]}}
    ),
    "other": SecretRefSpec.model_validate({"ref": "vault://other", "usedBy": {"connectors": []}}),
}


def test_a_listed_granted_declared_secret_is_given_as_its_manifest_says() -> None:
    found = granted("gh", ["token"], [{"name": "token", "env": "GH_TOKEN"}], REFS)
    assert [(g.secret, g.vault_name, g.delivery, g.target) for g in found] == [
        ("token", "gh-token", "env", "GH_TOKEN")
    ]
    as_file = granted("gh", ["token"], [{"name": "token", "file": "secrets/t"}], REFS)
    assert (as_file[0].delivery, as_file[0].target) == ("file", "secrets/t")


@pytest.mark.parametrize(
    ("secrets", "declared", "why"),
    [
        (["other"], [{"name": "other", "env": "X_TOKEN"}], "usedBy.connectors does not name gh"),
        (["missing"], [], "no SecretRef missing is applied"),
        (["token"], [{"name": "else", "env": "X"}], "its package does not declare this secret"),
        (["token"], [{"name": "token", "env": "PATH"}], "a variable Cloned sets itself"),
        (["token"], [{"name": "token", "env": "Https_Proxy"}], "a variable Cloned sets itself"),
        (["token"], [{"name": "token", "env": "ld_preload"}], "a variable Cloned sets itself"),
    ],
)
def test_anything_else_refuses_the_start(
    secrets: list[str], declared: list[dict[str, str]], why: str
) -> None:
    with pytest.raises(GrantRefused) as refused:
        granted("gh", secrets, declared, REFS)
    assert why in refused.value.message


def test_a_secret_the_manifest_declares_but_the_spec_does_not_list_is_not_given() -> None:
    assert granted("gh", [], [{"name": "token", "env": "GH_TOKEN"}], REFS) == ()


def test_secret_files_are_written_0600_below_the_data_folder_through_no_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reconciler.providers.grants import Grants

    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    Grants(files={"keys/token": "first-value", "top": "second-value"}).write_files(data)
    assert (data / "keys" / "token").read_text() == "first-value"
    assert (data / "top").stat().st_mode & 0o777 == 0o600
    (data / "keys" / "token").unlink()
    (data / "keys").rmdir()
    (data / "keys").symlink_to(outside)  # a folder swapped for a link to elsewhere
    with pytest.raises(GrantRefused):
        Grants(files={"keys/token": "first-value"}).write_files(data)
    assert list(outside.iterdir()) == []


def test_a_link_inside_the_data_folder_is_not_followed_either(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What the path check alone would let through (it resolves inside the folder) is still
    refused by the descriptor walk, which follows no link: the case of a link swapped in
    after the check."""
    from reconciler.providers.grants import Grants

    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "keys").symlink_to(data / "real")
    with pytest.raises(GrantRefused, match="could not be written"):
        Grants(files={"keys/token": "first-value"}).write_files(data)
    assert list((data / "real").iterdir()) == []
