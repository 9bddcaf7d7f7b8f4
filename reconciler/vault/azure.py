"""Azure Key Vault as a vault provider, through azure-keyvault-secrets and azure-identity
(specs/vault.md, "Azure provider").

`AzureProvider.from_settings` turns the Workspace's `vault.azure` (the vault's URL and how to
sign in) into a `SecretClient` with bounded timeouts and retries, so a down, slow or throttling
vault fails within seconds. Every SDK and transport error is converted here, at the call, into
the contract's errors (`types`): one line naming the vault and the secret, never a value or a
token, never an SDK traceback (each is raised `from None`). The SDK's own loggers are silenced:
its request log, its multi-line credential-chain report and any network trace would only
duplicate that line, and a trace could hold a value.

The only thing that differs for a loopback vault (the fake in tests/fakes/keyvault.py) is the
one test-only setting `CLONED_AZURE_TEST_ENDPOINTS` (`loopback_endpoints`); everything else is
the production path."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient, SecretProperties

from reconciler.model.workspace import AzureCredential, AzureVault
from reconciler.redact import active
from reconciler.vault.types import (
    ProviderName,
    SecretInfo,
    SecretMissing,
    SecretValue,
    Unreachability,
    VaultRefused,
    VaultStatus,
    VaultUnreachable,
    check_name,
    check_value,
    revealed,
)

TEST_ENDPOINTS_ENV = "CLONED_AZURE_TEST_ENDPOINTS"
"""Test only: JSON `{"url": "https://127.0.0.1:PORT", "ca": "ca.pem", "timeout": 0.5}`."""
CLIENT_SECRET_ENV = "AZURE_CLIENT_SECRET"  # noqa: S105  # a variable's name, not a secret
"""Where credential type `clientSecret` reads its secret (never from YAML)."""

CONNECT_TIMEOUT = 3.0
"""Seconds to open a connection to the vault or the token endpoint."""
READ_TIMEOUT = 5.0
"""Seconds to wait for a response; a slow vault fails after this, once (reads are not retried)."""
RETRIES = 2
"""Retries of a refused connection, a 429 or a 5xx (backoff 0 s, then 0.8 s)."""
MAX_RETRY_WAIT = 10.0
"""Total seconds one operation may sleep on Retry-After; a longer ask fails as throttled."""
OPERATION_TIMEOUT = 20.0
"""The outer bound on one operation, retries included."""
DELETE_WAIT = 30.0
"""Seconds `delete` waits for the soft delete to show in the vault's deleted secrets."""

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class LoopbackEndpoints:
    """The test-only setting: where a loopback Key Vault (and its token authority) listens.

    It changes exactly: the vault URL and the credential's authority (both `url`), the CA the
    TLS connections trust (`ca`), the challenge-resource check (off: a loopback host cannot be
    a subdomain of `vault.azure.net`), MSAL's instance discovery (off: it would ask
    login.microsoftonline.com about the unknown authority) and, when given, both timeouts."""

    url: str
    ca: str
    timeout: float | None = None


def loopback_endpoints(environ: Mapping[str, str]) -> LoopbackEndpoints | None:
    """The test-only setting from `environ`, None when unset; `VaultRefused` when it is not a
    loopback HTTPS URL with an existing CA file (so it can never send a vault elsewhere)."""
    raw = environ.get(TEST_ENDPOINTS_ENV)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise VaultRefused(f"{TEST_ENDPOINTS_ENV} is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not {"url", "ca"} <= data.keys() <= {"url", "ca", "timeout"}:
        raise VaultRefused(f"{TEST_ENDPOINTS_ENV} must be an object with url, ca (and timeout)")
    url, ca, timeout = data["url"], data["ca"], data.get("timeout")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or parts.hostname not in LOOPBACK_HOSTS:
        raise VaultRefused(f"{TEST_ENDPOINTS_ENV}: url must be https on a loopback address")
    if not isinstance(ca, str) or not Path(ca).is_file():
        raise VaultRefused(f"{TEST_ENDPOINTS_ENV}: ca must be an existing PEM file")
    if timeout is not None and (not isinstance(timeout, int | float) or not 0 < timeout <= 60):
        raise VaultRefused(f"{TEST_ENDPOINTS_ENV}: timeout must be seconds in (0, 60]")
    return LoopbackEndpoints(url.rstrip("/"), ca, None if timeout is None else float(timeout))


class _CappedRetry(RetryPolicy[Any, Any]):
    """azure-core's retry, honouring Retry-After but refusing a retry whose wait would bring
    this operation's total sleep past `MAX_RETRY_WAIT` (azure-core would sleep any length)."""

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if not super().is_retry(settings, response):
            return False
        wait = self.get_retry_after(response) or 0.0
        waited = float(settings.get("cloned_waited", 0.0)) + wait
        if waited > MAX_RETRY_WAIT:
            return False
        settings["cloned_waited"] = waited
        return True


class _RedactingCredential:
    """A credential that registers every access token it hands out with the redactor, so a
    token can no more reach an output than a value can."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        token: AccessToken = self._inner.get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )
        active().register(token.token)
        return token

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        info: AccessTokenInfo = self._inner.get_token_info(*scopes, options=options)
        active().register(info.token)
        return info

    def close(self) -> None:
        self._inner.close()


def _quiet_sdk_logs() -> None:
    """Keep the SDK's and MSAL's log records out of Cloned's output (see the module)."""
    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False
        logger.setLevel(logging.CRITICAL)


def _transport(loopback: LoopbackEndpoints | None) -> dict[str, Any]:
    """The timeouts (and, for a loopback vault, the CA) for both the vault's and the
    credential's HTTP pipeline."""
    timeout = loopback.timeout if loopback and loopback.timeout else None
    options: dict[str, Any] = {
        "connection_timeout": timeout or CONNECT_TIMEOUT,
        "read_timeout": timeout or READ_TIMEOUT,
        "retry_total": RETRIES,
    }
    if loopback is not None:
        options["connection_verify"] = loopback.ca
    return options


def _credential(
    settings: AzureCredential, loopback: LoopbackEndpoints | None, environ: Mapping[str, str]
) -> Any:
    """The azure-identity credential the Workspace names."""
    options = _transport(loopback)
    if settings.type == "managedIdentity":
        return ManagedIdentityCredential(client_id=settings.client_id, **options)
    if loopback is not None:
        options |= {"authority": loopback.url, "disable_instance_discovery": True}
    if settings.type == "default":
        return DefaultAzureCredential(**options)
    secret = environ.get(CLIENT_SECRET_ENV)
    if not secret:
        raise VaultRefused(
            f"credential type 'clientSecret' needs the client secret in {CLIENT_SECRET_ENV}",
            hint="export it in the environment Cloned runs in; it never goes in YAML",
        )
    active().register(secret)
    assert settings.tenant_id is not None and settings.client_id is not None  # model checked
    return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **options)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info(props: SecretProperties) -> SecretInfo:
    return SecretInfo(
        name=props.name or "",
        version=props.version,
        updated=_stamp(props.updated_on),
        enabled=bool(props.enabled),
    )


def _error_codes(exc: HttpResponseError) -> tuple[str, str]:
    """Key Vault's error code and inner error code (`("Forbidden", "SecretDisabled")`), read
    from the response body's `error` object; empty strings when it has none."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else {}
        error = body.get("error") or {}
        inner = error.get("innererror") or {}
        return str(error.get("code") or ""), str(inner.get("code") or "")
    except (ValueError, AttributeError, TypeError):
        return "", ""


_AADSTS = re.compile(r"AADSTS\d+")

_STATUS_WHY: dict[int, tuple[Unreachability, str]] = {
    403: ("forbidden", "the credential may not do this here (403 Forbidden)"),
    429: ("throttled", "the vault is throttling requests (429)"),
}


class AzureProvider:
    """The VaultProvider for Azure Key Vault (see the module)."""

    def __init__(self, client: SecretClient, url: str, credential: AzureCredential) -> None:
        self._client = client
        self._url = url
        self._credential = credential

    @classmethod
    def from_settings(
        cls, settings: AzureVault, *, environ: Mapping[str, str] | None = None
    ) -> AzureProvider:
        """The provider for a Workspace's `vault.azure`; nothing is asked of the vault yet."""
        env = os.environ if environ is None else environ
        _quiet_sdk_logs()
        loopback = loopback_endpoints(env)
        url = loopback.url if loopback else settings.vault_url.rstrip("/")
        credential = _RedactingCredential(_credential(settings.credential, loopback, env))
        transport = _transport(loopback)
        del transport["retry_total"]  # the client's retries are `retry`'s
        retry = _CappedRetry(
            retry_total=RETRIES,
            retry_connect=1,
            retry_read=0,
            retry_status=RETRIES,
            retry_backoff_factor=0.4,
            timeout=OPERATION_TIMEOUT,
        )
        client = SecretClient(
            url,
            credential,
            retry_policy=retry,
            verify_challenge_resource=loopback is None,
            **transport,
        )
        return cls(client, url, settings.credential)

    @property
    def provider(self) -> ProviderName:
        return "azure"

    @property
    def url(self) -> str:
        """The vault's URL (the loopback one under the test setting)."""
        return self._url

    def status(self) -> VaultStatus:
        """Whether the vault answers a listing, and how many secrets it holds."""
        try:
            count = len(self.names())
        except VaultUnreachable as exc:
            return VaultStatus("azure", self._url, False, f"{exc.why}: {exc}")
        detail = f"signed in ({self._credential.type} credential)"
        return VaultStatus("azure", self._url, True, detail, secrets=count)

    def names(self) -> list[SecretInfo]:
        """Every secret's metadata (the listing's pages; never a value), sorted by name;
        secrets that back Key Vault certificates (`managed`) are not Cloned's and are left out."""
        with self._asking("listing secrets", None):
            found = [_info(p) for p in self._client.list_properties_of_secrets() if not p.managed]
        return sorted(found, key=lambda info: info.name)

    def exists(self, name: str) -> SecretInfo | None:
        """The newest version's metadata from the versions listing (the value is not read);
        None when the secret has no versions. A disabled newest version is reported with
        `enabled=False` (`get` would refuse it)."""
        check_name(name)
        try:
            with self._asking("looking up", name):
                versions = list(self._client.list_properties_of_secret_versions(name))
        except SecretMissing:
            return None
        if not versions:
            return None
        newest = max(versions, key=lambda p: p.created_on or datetime.min.replace(tzinfo=UTC))
        return _info(newest)

    def get(self, name: str, version: str | None = None) -> SecretValue:
        """The value of `name` (its current version unless `version`), registered with the
        redactor; `SecretMissing` when it is absent, deleted or disabled."""
        check_name(name)
        with self._asking("reading", name):
            secret = self._client.get_secret(name, version)
        if secret.value is None:
            raise SecretMissing(name, self._line("reading", name, "the secret has no value"))
        return revealed(name, secret.properties.version, secret.value)

    def set(self, name: str, value: str) -> SecretInfo:
        """Store `value` as a new version of `name`. A name in the soft-deleted state is not
        recovered (that would bring back the versions someone deleted): `VaultRefused` says
        how to recover or purge it."""
        check_name(name)
        active().register(check_value(name, value))
        with self._asking("setting", name):
            secret = self._client.set_secret(name, value)
        return _info(secret.properties)

    def delete(self, name: str) -> None:
        """Delete every version of `name` (Key Vault's soft delete: the name stays recoverable
        until the vault's retention ends) and wait, up to `DELETE_WAIT`, for the deletion to
        show; `SecretMissing` when there is no such secret."""
        check_name(name)
        with self._asking("deleting", name):
            poller = self._client.begin_delete_secret(name)
            poller.wait(timeout=DELETE_WAIT)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def _line(self, doing: str, name: str | None, what: str) -> str:
        secret = f" secret {name!r}" if name else ""
        return f"Key Vault {self._url}: {doing}{secret}: {what}"

    @contextmanager
    def _asking(self, doing: str, name: str | None) -> Iterator[None]:
        """Convert every SDK and transport error raised inside into the contract's errors."""
        try:
            yield
        except ResourceNotFoundError:
            raise SecretMissing(name or "", self._line(doing, name, "no such secret")) from None
        except ClientAuthenticationError as exc:
            raise self._unauthorised(doing, name, exc) from None
        except HttpResponseError as exc:
            raise self._refusal(doing, name, exc) from None
        except (ServiceRequestTimeoutError, ServiceResponseTimeoutError):
            raise VaultUnreachable(
                self._line(doing, name, "no answer in time (timed out)"), why="timeout"
            ) from None
        except ServiceRequestError:
            raise VaultUnreachable(
                self._line(doing, name, "cannot connect (down, unknown host or refused)"),
                why="down",
            ) from None
        except ServiceResponseError:
            raise VaultUnreachable(
                self._line(doing, name, "the connection broke before an answer"), why="down"
            ) from None
        except AzureError as exc:
            what = f"the vault's answer could not be used ({type(exc).__name__})"
            raise VaultUnreachable(
                self._line(doing, name, what),
                why="server",
            ) from None
        except ValueError:
            # MSAL raises ValueError when the token authority's discovery fails.
            raise VaultUnreachable(
                self._line(doing, name, "the credential's token authority could not be used"),
                why="unauthorised",
            ) from None

    def _unauthorised(
        self, doing: str, name: str | None, exc: ClientAuthenticationError
    ) -> VaultUnreachable:
        if exc.status_code == 401:
            what = "the vault refused the credential's token (401 Unauthorized)"
        else:
            code = _AADSTS.search(str(exc.message))
            reason = f" ({code.group()})" if code else ""
            what = f"no token: the {self._credential.type} credential was refused{reason}"
        hint = {
            "default": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, use a "
            "managed identity, or sign in with `az login`",
            "clientSecret": f"check tenantId, clientId and {CLIENT_SECRET_ENV}",
            "managedIdentity": "check that this host has the managed identity (and clientId)",
        }[self._credential.type]
        return VaultUnreachable(self._line(doing, name, what), why="unauthorised", hint=hint)

    def _refusal(self, doing: str, name: str | None, exc: HttpResponseError) -> Exception:
        status = exc.status_code or 0
        code, inner = _error_codes(exc)
        if inner == "SecretDisabled":
            return SecretMissing(name or "", self._line(doing, name, "the secret is disabled"))
        if status == 409 and doing == "setting":
            return VaultRefused(
                self._line(doing, name, "the name is deleted but recoverable (soft delete)"),
                hint="recover it (`az keyvault secret recover`) or purge it, then set it again",
            )
        if status in _STATUS_WHY:
            why, what = _STATUS_WHY[status]
            return VaultUnreachable(self._line(doing, name, what), why=why)
        answer = f"{status} {code}".strip()
        if status >= 500:
            return VaultUnreachable(
                self._line(doing, name, f"the vault failed ({answer})"), why="server"
            )
        return VaultRefused(self._line(doing, name, f"refused ({answer})"))
