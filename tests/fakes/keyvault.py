"""A local Azure Key Vault and Entra ID token endpoint for tests and the bench.

One HTTPS server (stdlib http.server + ssl, in a thread, on 127.0.0.1 port 0, with a
certificate trustme makes for the run) speaks the Key Vault secrets REST subset the real
SDK uses, and the token side azure-identity and MSAL ask for:

- vault: challenge authentication (a request without a valid bearer token gets 401 with
  `WWW-Authenticate: Bearer authorization=".../TENANT", resource="https://vault.azure.net"`),
  GET/PUT/DELETE /secrets/{name}[/{version}], GET /secrets and /secrets/{name}/versions with
  nextLink paging, GET /deletedsecrets/{name} (the delete poller), any api-version, errors in
  Key Vault's JSON shape (`{"error": {"code", "message", "innererror"}}`);
- tokens: GET /{tenant}/v2.0/.well-known/openid-configuration, POST /{tenant}/oauth2/v2.0/token
  (client credentials; a token only for the registered client secret), GET /msi/token (App
  Service managed identity, checked against its X-IDENTITY-HEADER).

Use: `kv = FakeKeyVault.start(tmp)`, `kv.put("name", "value")`, `kv.fail("403")`,
`kv.count("GET", "/secrets/name")`, `kv.env()` (the test-only setting for Cloned), `kv.stop()`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

TENANT = "00000000-0000-4000-8000-0000000000aa"
CLIENT_ID = "00000000-0000-4000-8000-0000000000bb"
CLIENT_SECRET = "fake-client-secret-7d1c"
IDENTITY_HEADER = "fake-identity-header-3e9a"
RESOURCE = "https://vault.azure.net"
SCOPE = RESOURCE + "/.default"


@dataclass
class Version:
    id: str
    value: str
    enabled: bool
    created: int
    updated: int


@dataclass
class Failure:
    """An injected failure: `kind` is "slow", or an HTTP status ("401", "403", "429", "500",
    "503"); `times` how many matching vault requests it hits (None: all)."""

    kind: str
    times: int | None = None
    retry_after: str | None = None
    path: str | None = None
    delay: float = 2.0


@dataclass
class Seen:
    method: str
    path: str
    authorised: bool


@dataclass
class FakeKeyVault:
    """The server's state and the test's handle on it (see the module)."""

    root: Path
    page_size: int = 25
    secrets: dict[str, list[Version]] = field(default_factory=dict)
    deleted: dict[str, list[Version]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    ca_file: Path | None = None
    clock: int = 1_700_000_000

    @classmethod
    def start(cls, root: Path, *, page_size: int = 25) -> FakeKeyVault:
        """A running fake whose CA and state live under `root`."""
        root.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        kv = cls(root=root, page_size=page_size, ca_file=root / "ca.pem")
        ca.cert_pem.write_to_path(str(kv.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(kv))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        kv.server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return kv

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def env(self, *, timeout: float = 0.5, url: str | None = None) -> dict[str, str]:
        """The test-only setting pointing Cloned at this fake (or at `url`)."""
        setting = {"url": url or self.url, "ca": str(self.ca_file), "timeout": timeout}
        return {"CLONED_AZURE_TEST_ENDPOINTS": json.dumps(setting)}

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def put(self, name: str, value: str, *, enabled: bool = True) -> str:
        """Add a version of `name` as if someone set it in the portal; its version id."""
        with self.lock:
            return self._add(name, value, enabled)

    def remove(self, name: str) -> None:
        """Soft-delete `name` behind Cloned's back (as another admin would)."""
        with self.lock:
            self.deleted[name] = self.secrets.pop(name)

    def purge(self, name: str) -> None:
        with self.lock:
            self.deleted.pop(name, None)

    def fail(
        self,
        kind: str,
        *,
        times: int | None = None,
        retry_after: str | None = None,
        path: str | None = None,
        delay: float = 2.0,
    ) -> None:
        """Inject a failure into the next matching vault requests (see `Failure`)."""
        with self.lock:
            self.failures.append(Failure(kind, times, retry_after, path, delay))

    def reset(self) -> None:
        """Forget secrets, failures and the request log (tokens stay valid)."""
        with self.lock:
            self.secrets.clear()
            self.deleted.clear()
            self.failures.clear()
            self.seen.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched `method` and the exact `path` (query left out)."""
        with self.lock:
            return sum(
                1
                for s in self.seen
                if (method is None or s.method == method) and (path is None or s.path == path)
            )

    def _add(self, name: str, value: str, enabled: bool) -> str:
        self.clock += 1
        version = secrets.token_hex(16)
        self.secrets.setdefault(name, []).append(
            Version(version, value, enabled, self.clock, self.clock)
        )
        return version

    def _failure(self, path: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.path is not None and failure.path != path:
                    continue
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None


def _handler(kv: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        vault = kv

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait
    vault: FakeKeyVault

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # The client may give up (a "slow" test) or close the connection at any time.
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # -- plumbing

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        self._send(status, {"error": error})

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body()
        kv = self.vault
        segments = [s for s in path.split("/") if s]
        if segments[:1] in (["secrets"], ["deletedsecrets"]):
            authorised = self._authorised()
            with kv.lock:
                kv.seen.append(Seen(method, path.rstrip("/"), authorised))
            if not authorised:
                self._challenge()
                return
            if not self._inject(path.rstrip("/")):
                self._vault(method, segments, query, body)
            return
        with kv.lock:
            kv.seen.append(Seen(method, path, False))
        self._identity(method, segments, query, body)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization") or ""
        token = header.removeprefix("Bearer ")
        with self.vault.lock:
            return header.startswith("Bearer ") and token in self.vault.tokens

    def _challenge(self) -> None:
        message = "AKV10000: Request is missing a Bearer or PoP token."
        body = {"error": {"code": "Unauthorized", "message": message}}
        self._send(401, body, {"WWW-Authenticate": self._challenge_header()})

    def _inject(self, path: str) -> bool:
        failure = self.vault._failure(path)
        if failure is None:
            return False
        if failure.kind == "slow":
            self.vault.stopping.wait(failure.delay)
            return False
        status = int(failure.kind)
        headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
        codes = {401: "Unauthorized", 403: "Forbidden", 429: "Throttled", 500: "InternalError"}
        code = codes.get(status, "ServiceUnavailable")
        data = {"error": {"code": code, "message": f"injected {status}"}}
        if status == 401:
            headers["WWW-Authenticate"] = self._challenge_header()
        self._send(status, data, headers)
        return True

    def _challenge_header(self) -> str:
        return f'Bearer authorization="{self.vault.url}/{TENANT}", resource="{RESOURCE}"'

    # -- the vault

    def _bundle(self, name: str, v: Version, *, value: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"{self.vault.url}/secrets/{name}/{v.id}",
            "attributes": {
                "enabled": v.enabled,
                "created": v.created,
                "updated": v.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
        }
        if value:
            out["value"] = v.value
        return out

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]], path: str) -> None:
        asked = int((query.get("maxresults") or [self.vault.page_size])[0])
        size = min(asked, self.vault.page_size)
        start = int((query.get("$skiptoken") or ["0"])[0])
        chunk = items[start : start + size]
        following = start + size
        next_link = (
            f"{self.vault.url}{path}?api-version=2026-04-01&$skiptoken={following}"
            if following < len(items)
            else None
        )
        self._send(200, {"value": chunk, "nextLink": next_link})

    def _vault(self, method: str, seg: list[str], query: dict[str, list[str]], body: bytes) -> None:
        kv = self.vault
        with kv.lock:
            if seg == ["secrets"] and method == "GET":
                items = [
                    {
                        "id": f"{kv.url}/secrets/{name}",
                        "attributes": self._bundle(name, versions[-1], value=False)["attributes"],
                    }
                    for name, versions in sorted(kv.secrets.items())
                ]
                return self._page(items, query, "/secrets")
            if seg[0] == "deletedsecrets" and len(seg) == 2 and method == "GET":
                if seg[1] not in kv.deleted:
                    return self._missing(seg[1])
                return self._send(200, self._deleted(seg[1]))
            if seg[0] != "secrets" or len(seg) < 2:
                return self._error(400, "BadParameter", "unsupported request")
            name = seg[1]
            if method == "PUT" and len(seg) == 2:
                if name in kv.deleted:
                    return self._error(
                        409,
                        "Conflict",
                        f"Secret {name} is currently in a deleted but recoverable state, "
                        "and its name cannot be reused; in this state, the secret can only "
                        "be recovered or purged.",
                        "ObjectIsDeletedButRecoverable",
                    )
                value = json.loads(body or b"{}").get("value")
                if not isinstance(value, str):
                    return self._error(400, "BadParameter", "value is required")
                kv._add(name, value, True)
                return self._send(200, self._bundle(name, kv.secrets[name][-1], value=True))
            if name not in kv.secrets:
                return self._missing(name)
            versions = kv.secrets[name]
            if method == "DELETE" and len(seg) == 2:
                kv.deleted[name] = kv.secrets.pop(name)
                return self._send(200, self._deleted(name))
            if method == "GET" and len(seg) == 3 and seg[2] == "versions":
                items = [self._bundle(name, v, value=False) for v in versions]
                return self._page(items, query, f"/secrets/{name}/versions")
            if method == "GET" and len(seg) in (2, 3):
                wanted = seg[2] if len(seg) == 3 else versions[-1].id
                found = [v for v in versions if v.id == wanted]
                if not found:
                    return self._missing(name)
                if not found[0].enabled:
                    return self._error(
                        403,
                        "Forbidden",
                        "Operation get is not allowed on a disabled secret.",
                        "SecretDisabled",
                    )
                return self._send(200, self._bundle(name, found[0], value=True))
        return self._error(405, "BadParameter", "unsupported method")

    def _deleted(self, name: str) -> dict[str, Any]:
        out = self._bundle(name, self.vault.deleted[name][-1], value=False)
        out["recoveryId"] = f"{self.vault.url}/deletedsecrets/{name}"
        out["deletedDate"] = self.vault.clock
        out["scheduledPurgeDate"] = self.vault.clock + 90 * 86400
        return out

    def _missing(self, name: str) -> None:
        self._error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {name} was not found in this key vault.",
        )

    # -- the token side

    def _identity(
        self, method: str, seg: list[str], query: dict[str, list[str]], body: bytes
    ) -> None:
        base = self.vault.url
        if seg == [TENANT, "v2.0", ".well-known", "openid-configuration"]:
            return self._send(
                200,
                {
                    "issuer": f"{base}/{TENANT}/v2.0",
                    "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token",
                },
            )
        if seg == [TENANT, "oauth2", "v2.0", "token"] and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            good = (
                form.get("grant_type") == "client_credentials"
                and form.get("client_id") == CLIENT_ID
                and form.get("client_secret") == CLIENT_SECRET
            )
            if not good:
                return self._send(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
            if form.get("scope") != SCOPE:
                bad = {"error": "invalid_scope", "error_description": "AADSTS70011: bad scope"}
                return self._send(400, bad)
            return self._send(200, self._token({"expires_in": 3600, "ext_expires_in": 3600}))
        if seg == ["msi", "token"] and method == "GET":
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                return self._send(401, {"statusCode": 401, "message": "bad identity header"})
            if (query.get("resource") or [""])[0] != RESOURCE:
                return self._send(400, {"statusCode": 400, "message": "bad resource"})
            expires = str(int(time.time()) + 3600)
            return self._send(200, self._token({"expires_on": expires, "resource": RESOURCE}))
        return self._send(404, {"error": "not_found"})

    def _token(self, extra: dict[str, Any]) -> dict[str, Any]:
        token = "fake-token-" + secrets.token_urlsafe(24)
        with self.vault.lock:
            self.vault.tokens.add(token)
        return {"token_type": "Bearer", "access_token": token, **extra}


def unused_url() -> str:
    """An https URL on a loopback port nothing listens on (a vault that is down)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}"
