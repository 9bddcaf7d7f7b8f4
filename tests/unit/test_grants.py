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
