"""The azure vault provider with the real SDK (azure-keyvault-secrets, azure-identity) against
the local Key Vault in tests/fakes/keyvault.py: the production code path, with only the
test-only setting CLONED_AZURE_TEST_ENDPOINTS pointing it at loopback (specs/vault.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.workspace import AzureVault
from reconciler.redact import MASK, active
from reconciler.vault.azure import AzureProvider, loopback_endpoints
from reconciler.vault.types import SecretMissing, VaultRefused, VaultUnreachable
from tests.fakes.keyvault import (
    CLIENT_ID,
    CLIENT_SECRET,
    IDENTITY_HEADER,
    TENANT,
    FakeKeyVault,
    unused_url,
)

VALUE = "canary-value-7f3e9b21"


@pytest.fixture(scope="module")
def kv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKeyVault]:
    fake = FakeKeyVault.start(tmp_path_factory.mktemp("keyvault"), page_size=2)
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def loopback(kv: FakeKeyVault, monkeypatch: pytest.MonkeyPatch) -> FakeKeyVault:
    kv.reset()
    for key, value in kv.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    return kv


def settings(kind: str = "clientSecret", **credential: Any) -> AzureVault:
    if kind == "clientSecret":
        credential = {"tenantId": TENANT, "clientId": CLIENT_ID, **credential}
    return AzureVault.model_validate(
        {"vaultUrl": "https://kv1.vault.azure.net", "credential": {"type": kind, **credential}}
    )


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> AzureProvider:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    return AzureProvider.from_settings(settings())


def test_set_get_versions_list_and_delete(vault: AzureProvider, kv: FakeKeyVault) -> None:
    first = vault.set("github-token", VALUE)
    second = vault.set("github-token", VALUE + "-rotated")
    assert first.version and second.version and first.version != second.version

    assert vault.get("github-token").value == VALUE + "-rotated"
    assert vault.get("github-token", first.version).value == VALUE
    assert vault.exists("github-token") == second

    for name in ("a-one", "b-two", "c-three"):
        kv.put(name, "some-long-value")
    assert [info.name for info in vault.names()] == ["a-one", "b-two", "c-three", "github-token"]
    assert kv.count("GET", "/secrets") == 2  # two pages of two, through nextLink

    vault.delete("github-token")
    assert "github-token" in kv.deleted  # soft delete, and the poller saw it
    assert kv.count("GET", "/deletedsecrets/github-token") >= 1
    assert vault.exists("github-token") is None
    with pytest.raises(SecretMissing, match="no such secret"):
        vault.get("github-token")
    with pytest.raises(SecretMissing):
        vault.delete("github-token")


def test_exists_reads_metadata_not_the_value(vault: AzureProvider, kv: FakeKeyVault) -> None:
    version = kv.put("model-key", VALUE)
    info = vault.exists("model-key")
    assert info is not None and info.version == version and info.enabled
    assert kv.count("GET", "/secrets/model-key/versions") == 1
    assert kv.count("GET", "/secrets/model-key") == 0  # the value was never asked for
    assert vault.exists("never-set") is None


def test_a_value_is_registered_with_the_redactor(vault: AzureProvider, kv: FakeKeyVault) -> None:
    kv.put("model-key", "fresh-value-never-seen-4411")
    secret = vault.get("model-key")
    assert "fresh-value" not in repr(secret) and "fresh-value" not in str(secret)
    assert active().text("out: fresh-value-never-seen-4411") == f"out: {MASK}"


def test_a_disabled_secret_is_missing(vault: AzureProvider, kv: FakeKeyVault) -> None:
    kv.put("old-token", VALUE, enabled=False)
    info = vault.exists("old-token")
    assert info is not None and not info.enabled
    with pytest.raises(SecretMissing, match="disabled"):
        vault.get("old-token")


def test_deleted_between_two_calls(vault: AzureProvider, kv: FakeKeyVault) -> None:
    kv.put("deploy-key", VALUE)
    assert vault.exists("deploy-key") is not None  # plan
    kv.remove("deploy-key")  # someone deletes it in the portal
    with pytest.raises(SecretMissing, match="deploy-key"):
        vault.get("deploy-key")  # apply
    with pytest.raises(VaultRefused, match="deleted but recoverable") as refused:
        vault.set("deploy-key", VALUE)
    assert refused.value.hint and "recover" in refused.value.hint
    kv.purge("deploy-key")
    assert vault.set("deploy-key", VALUE).version


def assert_one_clean_line(error: Exception, vault: AzureProvider, name: str) -> None:
    text = str(error)
    assert "\n" not in text and vault.url in text and repr(name) in text
    assert VALUE not in text and CLIENT_SECRET not in text and "fake-token-" not in text
    assert error.__cause__ is None and error.__suppress_context__  # no SDK traceback


@pytest.mark.parametrize(
    ("kind", "retry_after", "why", "requests"),
    [
        ("401", None, "unauthorised", None),
        ("403", None, "forbidden", 1),
        ("429", "30", "throttled", 1),  # past the 10 s cap: no sleep, no retry
        ("429", "0.05", "throttled", 3),  # honoured, then out of retries
        ("500", None, "server", 3),
        ("503", "0.05", "server", 3),
        ("slow", None, "timeout", 1),
    ],
)
def test_each_failure_fails_closed_with_one_line(
    vault: AzureProvider,
    kv: FakeKeyVault,
    kind: str,
    retry_after: str | None,
    why: str,
    requests: int | None,
) -> None:
    kv.put("api-token", VALUE)
    vault.exists("api-token")  # signed in: the failure hits an authorised request
    kv.fail(kind, retry_after=retry_after, path="/secrets/api-token")
    with pytest.raises(VaultUnreachable) as caught:
        vault.get("api-token")
    assert caught.value.why == why
    assert_one_clean_line(caught.value, vault, "api-token")
    if requests is not None:
        assert kv.count("GET", "/secrets/api-token") == requests


def test_retry_after_is_honoured(vault: AzureProvider, kv: FakeKeyVault) -> None:
    kv.put("api-token", VALUE)
    kv.fail("429", times=1, retry_after="0.05", path="/secrets/api-token")
    assert vault.get("api-token").value == VALUE
    assert kv.count("GET", "/secrets/api-token") == 2


def test_a_vault_that_is_down(monkeypatch: pytest.MonkeyPatch, kv: FakeKeyVault) -> None:
    for key, value in kv.env(url=unused_url()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    down = AzureProvider.from_settings(settings())
    with pytest.raises(VaultUnreachable) as caught:
        down.get("api-token")
    assert caught.value.why == "down"
    assert_one_clean_line(caught.value, down, "api-token")
    status = down.status()
    assert not status.reachable and "UNREACHABLE" in status.line() and "down" in status.detail


def test_a_wrong_client_secret_is_unauthorised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-right-secret-99")
    wrong = AzureProvider.from_settings(settings())
    with pytest.raises(VaultUnreachable) as caught:
        wrong.exists("api-token")
    assert caught.value.why == "unauthorised"
    assert "AADSTS7000215" in str(caught.value) and caught.value.hint
    assert "not-the-right-secret-99" not in str(caught.value) + caught.value.hint
    assert_one_clean_line(caught.value, wrong, "api-token")


def test_client_secret_comes_only_from_the_environment() -> None:
    with pytest.raises(VaultRefused, match="AZURE_CLIENT_SECRET"):
        AzureProvider.from_settings(settings())


def test_the_default_chain_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, kv: FakeKeyVault, tmp_path: Path
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    kv.put("api-token", VALUE)
    assert AzureProvider.from_settings(settings("default")).get("api-token").value == VALUE
    token_requests = f"/{TENANT}/oauth2/v2.0/token"
    assert kv.count("POST", token_requests) == 1

    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong-secret-for-the-chain")
    with pytest.raises(VaultUnreachable) as caught:
        AzureProvider.from_settings(settings("default")).get("api-token")
    assert caught.value.why == "unauthorised" and "az login" in (caught.value.hint or "")


def test_managed_identity(monkeypatch: pytest.MonkeyPatch, kv: FakeKeyVault) -> None:
    # App Service's own variables, as the platform sets them on a real host.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{kv.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    kv.put("api-token", VALUE)
    assert AzureProvider.from_settings(settings("managedIdentity")).get("api-token").value == VALUE
    assert kv.count("GET", "/msi/token") == 1

    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(VaultUnreachable) as caught:
        AzureProvider.from_settings(settings("managedIdentity")).get("api-token")
    assert caught.value.why == "unauthorised"


def test_no_value_or_token_reaches_logs_or_output(
    vault: AzureProvider,
    kv: FakeKeyVault,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong-secret-for-the-chain")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        vault.set("api-token", VALUE)
        vault.get("api-token")
        kv.fail("503", retry_after="0.05", path="/secrets/api-token")
        with pytest.raises(VaultUnreachable):
            vault.get("api-token")
        monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
        monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
        with pytest.raises(VaultUnreachable):  # the chain's multi-line report is a WARNING
            AzureProvider.from_settings(settings("default")).get("api-token")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    out, err = capfd.readouterr()
    assert out == err == ""
    assert not [r for r in records if r.name.split(".")[0] in ("azure", "msal")]
    seen = "\n".join(handler.format(r) for r in records)  # urllib3's request lines remain
    assert kv.tokens
    for secret in [VALUE, CLIENT_SECRET, *kv.tokens]:
        assert secret not in seen
    token = next(iter(kv.tokens))
    assert active().text(f"Authorization: Bearer {token}") == f"Authorization: Bearer {MASK}"


def test_the_test_setting_only_points_at_loopback(kv: FakeKeyVault, tmp_path: Path) -> None:
    setting = json.loads(kv.env()["CLONED_AZURE_TEST_ENDPOINTS"])
    ok = loopback_endpoints({"CLONED_AZURE_TEST_ENDPOINTS": json.dumps(setting)})
    assert ok is not None and ok.url == kv.url
    assert loopback_endpoints({}) is None
    for bad in (
        {**setting, "url": "https://kv1.vault.azure.net"},
        {**setting, "url": "http://127.0.0.1:1"},
        {**setting, "ca": str(tmp_path / "missing.pem")},
        {**setting, "timeout": 0},
        {"url": setting["url"]},
    ):
        with pytest.raises(VaultRefused, match="CLONED_AZURE_TEST_ENDPOINTS"):
            loopback_endpoints({"CLONED_AZURE_TEST_ENDPOINTS": json.dumps(bad)})
    with pytest.raises(VaultRefused, match="not JSON"):
        loopback_endpoints({"CLONED_AZURE_TEST_ENDPOINTS": "{"})


def test_production_keeps_the_challenge_resource_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLONED_AZURE_TEST_ENDPOINTS")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    real = AzureProvider.from_settings(settings())
    assert real.url == "https://kv1.vault.azure.net"
    # Nothing is sent: the check only happens on a challenge. The private attribute is the
    # only place the SDK keeps it; a loopback vault is the one case that turns it off.
    policy = real._client._client._config.authentication_policy  # type: ignore[attr-defined]
    assert policy._verify_challenge_resource is True
