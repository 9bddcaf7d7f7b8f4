"""How a registry is read: SafeFetch's caps and refusals against a real loopback server (the
registry's own origin only), the `file:` fetcher's confinement, and the `--*-expires`
durations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tuf.api import exceptions

from reconciler.egress.rules import EgressRules
from reconciler.errors import UsageError
from reconciler.http.errors import EgressRefused, HttpFailed
from reconciler.http.safefetch import SafeFetch
from reconciler.packages.registry.fetcher import RegistryFetcher
from reconciler.packages.registry.serve import RegistryServer
from reconciler.usecases.durations import parse_duration


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        body = b"x" * 1000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def get(url: str, max_bytes: int) -> bytes:
    """A GET as a registry at `url`'s origin makes it (loopback allowed, as for a local one)."""
    rules = EgressRules.for_registry("local", url)
    with SafeFetch(rules, allow_loopback_for=["127.0.0.1"]) as fetch:
        return b"".join(fetch.stream(url, max_bytes=max_bytes))


def test_a_body_within_the_cap_is_read_whole(server: str) -> None:
    assert get(f"{server}/file", 1000) == b"x" * 1000


def test_a_body_past_the_cap_is_refused(server: str) -> None:
    with pytest.raises(HttpFailed, match="more than 999 bytes"):
        get(f"{server}/file", 999)


def test_a_redirect_to_another_scheme_is_refused(server: str) -> None:
    with pytest.raises(EgressRefused, match=r"file:///etc/passwd: refused: .*only absolute http"):
        get(f"{server}/redirect", 10)


def test_a_status_other_than_200_carries_the_status(server: str) -> None:
    with pytest.raises(HttpFailed) as caught:
        get(f"{server}/missing", 10)
    assert caught.value.status == 404


def test_the_fetcher_gives_tuf_a_404_for_a_missing_http_file(server: str) -> None:
    fetcher = RegistryFetcher(None, name="local", url=f"{server}/")
    with pytest.raises(exceptions.DownloadHTTPError) as caught:
        fetcher.download_bytes(f"{server}/missing", 100)
    assert caught.value.status_code == 404
    assert fetcher.download_bytes(f"{server}/file", 1000) == b"x" * 1000


def test_the_fetcher_reaches_its_registry_origin_only(server: str) -> None:
    fetcher = RegistryFetcher(None, name="local", url=f"{server}/")
    other = server.replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(exceptions.DownloadError, match="not in any allow list"):
        fetcher.download_bytes(f"{other}/file", 1000)


def test_a_registry_named_by_a_public_name_may_not_resolve_to_loopback(server: str) -> None:
    # A name that resolves to this machine is not a local registry: only the literal spellings
    # are (`localhost`, 127.0.0.1, [::1]).
    port = server.rsplit(":", 1)[1]
    rules = EgressRules.for_registry("acme", f"http://registry.acme.example:{port}/")
    fetch = SafeFetch(rules, resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(EgressRefused, match=r"is 127\.0\.0\.1: loopback"):
        fetch.get(f"http://registry.acme.example:{port}/file")


def test_a_file_registry_reads_inside_its_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "reg"
    (folder / "metadata").mkdir(parents=True)
    (folder / "metadata" / "1.root.json").write_bytes(b"{}")
    (tmp_path / "secret").write_text("outside")
    (folder / "metadata" / "link.json").symlink_to(tmp_path / "secret")
    fetcher = RegistryFetcher(folder)
    assert fetcher.download_bytes("file:metadata/1.root.json", 10) == b"{}"
    for url in (
        "file:../secret",
        "file:metadata/%2e%2e/%2e%2e/secret",
        "file:metadata/link.json",
        "file:/etc/passwd",
    ):
        with pytest.raises(exceptions.DownloadError, match="outside the registry folder"):
            fetcher.download_bytes(url, 100)
    with pytest.raises(exceptions.DownloadHTTPError) as caught:
        fetcher.download_bytes("file:metadata/2.root.json", 100)
    assert caught.value.status_code == 404


def test_a_file_longer_than_tuf_allows_is_cut_off(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_bytes(b"y" * 100)
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        RegistryFetcher(tmp_path).download_bytes("file:big.json", 99)


def test_serve_hides_folder_listings_and_serves_files(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "timestamp.json").write_bytes(b"{}")
    served = RegistryServer(tmp_path, "127.0.0.1", 0).start()
    try:
        assert get(served.url + "metadata/timestamp.json", 10) == b"{}"
        with pytest.raises(HttpFailed) as caught:
            get(served.url + "metadata/", 10_000)
        assert caught.value.status == 404
    finally:
        served.shutdown()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("365d", timedelta(days=365)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--root-expires") == expected


@pytest.mark.parametrize("text", ["", "0d", "-1d", "1y", "1.5d", "1d "])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--root-expires"):
        parse_duration(text, "--root-expires")
