"""How the TUF client reads a registry: `file:` folders and http(s) servers.

python-tuf's `Updater` asks this fetcher for every metadata and target file, with the most
bytes it accepts. A `file:` registry is read from its folder and nothing outside it (no `..`,
no link leading out); http(s) goes through SafeFetch (`reconciler.http.safefetch`) with the
registry's own rules: its URL's scheme, host and port and nothing else (the Registry resource,
gated by policy, is the approval of that host), every address checked, every redirect hop
checked the same way, sizes capped. A registry whose URL names this machine literally
(`127.0.0.1`, `[::1]`, `localhost`: `cloned registry serve`) may resolve to loopback, the one
place SafeFetch's `allow_loopback_for` is used outside tests. A missing file is HTTP 404 to
TUF, which is how it learns that the newest root has been reached. The fetcher keeps the last
metadata file it delivered, so a refusal can say what was wrong with it (`refusals.py`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

from reconciler.http.errors import HttpFailed

if TYPE_CHECKING:
    from reconciler.egress.rules import PackEgress
    from reconciler.http.safefetch import SafeFetch

CHUNK = 64 * 1024
KEEP_AT_MOST = 5_000_000  # metadata is kept for diagnosis; targets past this size are not
MAX_REDIRECTS = 3  # a registry behind a CDN may redirect, but only within its own origin


class RegistryFetcher(FetcherInterface):
    """Reads `file:` URLs under `folder`, or http(s) URLs of registry `name` at `url`."""

    def __init__(
        self,
        folder: Path | None,
        *,
        name: str = "",
        url: str | None = None,
        denies: Sequence[PackEgress] = (),
    ) -> None:
        self._folder = folder.resolve() if folder is not None else None
        self._name, self._url = name, url
        self._denies = tuple(denies)
        self._http: SafeFetch | None = None
        self.last_url: str | None = None
        self.last_body: bytes | None = None
        self._cap = 0

    @contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        """The file at `url` in a temporary file; the request itself stops past `max_length`."""
        self._cap = max_length
        self.last_url, self.last_body = url, None
        with super().download_file(url, max_length) as handle:
            yield handle

    def download_bytes(self, url: str, max_length: int) -> bytes:
        """The file at `url` (at most `max_length` bytes), remembered for diagnosis."""
        body = super().download_bytes(url, max_length)
        if len(body) <= KEEP_AT_MOST:
            self.last_body = body
        return body

    def _fetch(self, url: str) -> Iterator[bytes]:
        if url.startswith("file:"):
            yield from self._read_file(url)
            return
        try:
            yield from self._safefetch().stream(url, max_bytes=self._cap)
        except HttpFailed as exc:
            if exc.status is not None:
                raise exceptions.DownloadHTTPError(str(exc), exc.status) from None
            raise exceptions.DownloadError(str(exc)) from None

    def _safefetch(self) -> SafeFetch:
        """One client per registry session, so its files share the checked address and the
        connections (imported here: a `file:` registry never loads httpx)."""
        if self._http is None:
            from reconciler.egress.addresses import is_plain_loopback
            from reconciler.egress.hostnames import LOCAL_NAMES, HostRefused, parse_url
            from reconciler.egress.rules import EgressRules
            from reconciler.http.safefetch import SafeFetch

            if self._url is None:
                raise exceptions.DownloadError("this registry has no http(s) URL")
            try:
                host = parse_url(self._url).host
            except HostRefused as exc:
                raise exceptions.DownloadError(f"registry url {self._url}: {exc}") from None
            local = host.name in LOCAL_NAMES or is_plain_loopback(host.address or "")
            self._http = SafeFetch(
                EgressRules.for_registry(self._name, self._url, self._denies),
                max_redirects=MAX_REDIRECTS,
                allow_loopback_for=[host.key] if local else [],
            )
        return self._http

    def _read_file(self, url: str) -> Iterator[bytes]:
        path = self._confined(url)
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
        except FileNotFoundError:
            raise exceptions.DownloadHTTPError(f"{url}: no such file", 404) from None
        except OSError as exc:
            raise exceptions.DownloadError(f"{url}: {exc.strerror}") from None

    def _confined(self, url: str) -> Path:
        if self._folder is None:
            raise exceptions.DownloadError(f"{url}: this registry is not a folder")
        relative = unquote(url.removeprefix("file:"))
        path = Path(relative)
        if path.is_absolute() or ".." in path.parts:
            raise exceptions.DownloadError(f"{url}: a path outside the registry folder")
        resolved = (self._folder / path).resolve()
        if not resolved.is_relative_to(self._folder):
            raise exceptions.DownloadError(f"{url}: leads outside the registry folder")
        return resolved
