"""Secrets granted to a connector, end to end: the canary connector (tests/fakes/canary_mcp.py)
is granted one secret as a variable and one as a file, from the dev vault and from the local
Key Vault, and says them back in every way it can (result text, structured content, a tool
error, a JSON-RPC error, stderr, a file of its own, each in raw, base64, hex, URL and JSON
forms). None of it reaches anything Cloned prints or writes: every output of the commands and
every file under `.cloned/` and `$CLONED_HOME` is scanned, all but the connector's own data
folder (where it was handed the file and wrote its own). A secret the SecretRef does not grant
is refused at start; a missing one fails the plan with its file and line; a vault that fails
or loses a secret between plan and start fails the start closed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Result, cloned, commit_all, write
from tests.fakes.canary_mcp import MANIFEST, SERVER, resources
from tests.fakes.keyvault import CLIENT_ID, CLIENT_SECRET, TENANT, FakeKeyVault
from tests.func.engine_helpers import Team, make_team
from tests.func.governed_helpers import events
from tests.func.vault_helpers import forms

TOKEN = "cnry-Zq8v!x/+Rk3p=Tw9-env"
FILE_VALUE = "cnry-file:7Hq2W9&payload"
DEV = "  vault: {provider: dev}\n"


def azure(url: str = "https://kv1.vault.azure.net") -> str:
    return (
        f"  vault:\n    provider: azure\n    azure:\n      vaultUrl: {url}\n"
        f"      credential: {{type: clientSecret, tenantId: {TENANT}, clientId: {CLIENT_ID}}}\n"
    )


class Canary:
    def __init__(self, team: Team) -> None:
        self.team = team
        self.printed: list[Result] = []

    @property
    def repo(self) -> Path:
        return self.team.repo

    def run(self, *args: str, stdin: str = "") -> Result:
        result = cloned(*args, cwd=self.repo, env={"CLONED_HOME": str(self.home)}, stdin=stdin)
        self.printed.append(result)
        return result

    @property
    def home(self) -> Path:
        return self.team.homes["alice"]  # who set the dev vault's secrets holds its key

    def data(self) -> Path:
        return self.repo / ".cloned" / "state" / "connectors" / "canary" / "data"

    def call(self, tool: str, *extra: str) -> Result:
        return self.run("connectors", "call", "canary", tool, *extra)


def canary_team(repo: Path, tmp_path: Path, vault: str = DEV, users: str = "[canary]") -> Canary:
    team = make_team(repo, tmp_path)
    workspace = (repo / ".cloned" / "workspace.yaml").read_text()
    write(repo, ".cloned/workspace.yaml", workspace + vault)
    write(repo, "tools/canary/connector.yaml", MANIFEST)
    write(repo, "tools/canary/server.py", SERVER)
    write(repo, ".cloned/canary.yaml", resources(users))
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "the canary connector and its secrets")
    return Canary(team)


def set_secrets(canary: Canary) -> None:
    for name, value in (("canary-token", TOKEN), ("canary-file", FILE_VALUE)):
        done = canary.run("vault", "set", name, stdin=value)
        assert done.code == 0, done.err


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def assert_nothing_leaked(canary: Canary) -> None:
    printed = "".join(r.out + r.err for r in canary.printed).encode()
    own = canary.data()
    files = [
        path
        for path in [*(canary.repo / ".cloned").rglob("*"), *canary.home.rglob("*")]
        if path.is_file() and own not in path.parents
    ]
    assert any(path.name == "canary.log" for path in files)  # its stderr, redacted
    for value in (TOKEN, FILE_VALUE):
        for form in forms(value):
            assert form not in printed, form
            for path in files:
                assert form not in path.read_bytes(), (path, form)


def test_a_granted_canary_reaches_the_connector_and_nothing_else(
    repo: Path, tmp_path: Path
) -> None:
    canary = canary_team(repo, tmp_path)
    set_secrets(canary)
    applied = canary.run("apply")
    assert applied.code == 0, applied.out + applied.err
    digest = canary.call("digest")
    assert digest.code == 0, digest.err
    assert json.loads(digest.out) == [sha(TOKEN), sha(FILE_VALUE)]  # both were delivered
    assert (canary.data() / "token.txt").stat().st_mode & 0o777 == 0o600
    for tool in ("leak", "fail", "crash"):
        canary.call(tool)
        canary.call(tool, "--json")
    assert (canary.data() / "leaked.txt").is_file()  # it did try
    log = (canary.repo / ".cloned/state/logs/connectors/canary.log").read_text()
    assert "stderr says [REDACTED]" in log
    for command in (
        ("audit", "log", "--long"),
        ("audit", "log", "--json"),
        ("plan",),
        ("plan", "--json"),
        ("connectors", "show", "canary", "--json"),
        ("connectors", "tools", "canary", "--json"),
        ("connectors", "stats", "--json"),
        ("vault", "list", "--json"),
    ):
        canary.run(*command)
    (granted, *_) = events(canary.repo, "secret.granted")
    assert granted["subject"] == "connector.canary"
    assert granted["payload"]["provider"] == "dev"
    assert [(s["secret"], s["delivery"], s["target"]) for s in granted["payload"]["secrets"]] == [
        ("canary-token", "env", "CANARY_TOKEN"),
        ("canary-file", "file", "token.txt"),
    ]
    assert_nothing_leaked(canary)


def test_a_secret_its_secretref_does_not_grant_is_refused_at_start(
    repo: Path, tmp_path: Path
) -> None:
    canary = canary_team(repo, tmp_path, users="[]")
    set_secrets(canary)
    applied = canary.run("apply")
    # Installed, but its start for the tool listing is refused: the apply says so and fails.
    assert applied.code == 1 and "Apply finished: 6 applied, 1 FAILED." in applied.out
    assert "secretref.canary-token usedBy.connectors does not name canary" in applied.out
    assert not (canary.data() / "token.txt").exists()


def test_revoking_a_grant_refuses_the_next_start(repo: Path, tmp_path: Path) -> None:
    canary = canary_team(repo, tmp_path)
    set_secrets(canary)
    assert canary.run("apply").code == 0
    write(repo, ".cloned/canary.yaml", resources("[]"))
    commit_all(repo, "canary may no longer use its secrets")
    revoked = canary.run("apply")  # fewer users of a secret: a tightening, applied at once
    assert revoked.code == 0, revoked.out + revoked.err
    refused = canary.call("digest")
    assert refused.code == 1
    assert "secretref.canary-token usedBy.connectors does not name canary" in refused.err
    assert "rule  connector.canary secrets" in refused.err


def test_a_missing_secret_fails_the_plan_at_its_secretref(repo: Path, tmp_path: Path) -> None:
    canary = canary_team(repo, tmp_path)
    assert canary.run("vault", "set", "canary-token", stdin=TOKEN).code == 0
    plan = canary.run("plan")
    assert plan.code == 1
    line = next(
        number
        for number, text in enumerate((repo / ".cloned/canary.yaml").read_text().splitlines(), 1)
        if "vault://canary-file" in text
    )
    assert f".cloned/canary.yaml:{line}:" in plan.err
    assert "the dev vault has no secret 'canary-file'; set it with `cloned vault set " in plan.err
    assert not (repo / ".cloned" / "state").exists() or canary.run("apply").code == 1


def test_secretrefs_without_a_vault_plan_with_a_warning(repo: Path, tmp_path: Path) -> None:
    canary = canary_team(repo, tmp_path, vault="")
    plan = canary.run("plan")
    assert plan.code in (0, 2), plan.err
    assert "Warning: 2 SecretRefs but no vault (Workspace spec.vault.provider none)" in plan.err


@pytest.fixture
def kv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKeyVault]:
    fake = FakeKeyVault.start(tmp_path / "keyvault")
    for key, value in fake.env(timeout=2).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    yield fake
    fake.stop()


def test_from_key_vault_a_grant_fails_closed_when_the_secret_is_gone_or_the_vault_fails(
    repo: Path, tmp_path: Path, kv: FakeKeyVault
) -> None:
    canary = canary_team(repo, tmp_path, vault=azure())
    kv.put("canary-token", TOKEN)
    kv.put("canary-file", FILE_VALUE)
    applied = canary.run("apply")
    assert applied.code == 0, applied.out + applied.err
    digest = canary.call("digest")
    assert digest.code == 0, digest.err
    assert json.loads(digest.out) == [sha(TOKEN), sha(FILE_VALUE)]
    canary.call("leak")

    kv.remove("canary-file")  # deleted behind Cloned's back, after the plan
    gone = canary.call("digest")
    assert gone.code == 1 and "'canary-file': no such secret" in gone.err
    assert "not started" in gone.err
    assert canary.run("plan").code == 1  # and the next plan says so

    kv.put("canary-file", FILE_VALUE)
    kv.fail("500")
    failing = canary.call("digest")
    assert failing.code == 1 and "not started" in failing.err
    assert len(failing.err.strip().splitlines()) <= 2
    assert_nothing_leaked(canary)
