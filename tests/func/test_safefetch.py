"""SafeFetch against a real HTTP server on 127.0.0.1, and with injected resolvers.

Loopback is reachable only through the explicit test allowance (`allow_loopback_for`). No test
sends a packet anywhere else: every other address is either refused before connecting, or
stopped by an `on_connect` hook that records where the socket was about to go and raises. So
"no connection was attempted" and "the connection went to the checked address" are both
assertions on that record."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from reconciler.egress.rules import EgressRules, PackEgress
from reconciler.http.errors import EgressRefused, HttpFailed
from reconciler.http.safefetch import SafeFetch
from reconciler.model.kinds import ConnectorEgress


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        path = urlsplit(self.path).path
        if path == "/redirect":
            self.send_response(int(query.get("status", ["302"])[0]))
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = {
            "/big": b"y" * 5000,
            "/echo": f"{self.command} auth={self.headers.get('Authorization')} "
            f"host={self.headers.get('Host')}".encode(),
        }.get(path, b"hello")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


class Stopped(Exception):
    """Raised by the recording hook: the socket never connects."""


class Record:
    """A resolver with scripted answers and an `on_connect` hook, both recording."""

    def __init__(self, *answers: Sequence[str], stop_unless_loopback: bool = True) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []
        self.connects: list[tuple[str, str, int]] = []
        self._stop = stop_unless_loopback

    def resolve(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if self.answers else ["127.0.0.1"]

    def on_connect(self, host: str, address: str, port: int) -> None:
        self.connects.append((host, address, port))
        if self._stop and address not in ("127.0.0.1", "::1"):
            raise Stopped(address)


def fetch(
    record: Record,
    *hosts: str,
    insecure: Sequence[str] = (),
    loopback: Sequence[str] = (),
    packs: Sequence[PackEgress] = (),
    **options: object,
) -> SafeFetch:
    egress = ConnectorEgress.model_validate(
        {"allowHosts": list(hosts), "insecureHosts": list(insecure) or list(hosts)}
    )
    return SafeFetch(
        EgressRules.for_connector("t", egress, packs=packs),
        resolver=record.resolve,
        on_connect=record.on_connect,
        allow_loopback_for=loopback,
        **options,  # type: ignore[arg-type]
    )


def test_loopback_is_reached_only_with_the_test_allowance(port: int) -> None:
    host = f"127.0.0.1:{port}"
    record = Record()
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1: loopback"):
        fetch(record, host).get(f"http://{host}/")
    assert record.connects == []
    allowed = fetch(record, host, loopback=["127.0.0.1"]).get(f"http://{host}/")
    assert (allowed.status, allowed.body) == (200, b"hello")
    assert record.connects == [("127.0.0.1", "127.0.0.1", port)]


def test_a_redirect_to_a_host_not_allowed_is_refused_before_connecting(port: int) -> None:
    record = Record()
    client = fetch(record, f"127.0.0.1:{port}", loopback=["127.0.0.1"])
    with pytest.raises(EgressRefused, match=r"evil\.example:443 is not in any allow list"):
        client.get(f"http://127.0.0.1:{port}/redirect?to=https://evil.example/")
    assert record.lookups == []  # refused on its name: never even resolved
    assert [address for _, address, _ in record.connects] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("location", "answer", "reason"),
    [("https://cdn.example/", ["169.254.169.254"], "metadata"),
     ("https://cdn.example/", ["93.184.216.34", "10.0.0.7"], "private"),
     ("https://[::ffff:169.254.169.254]/", [], "metadata"),
     ("http://2130706433:{port}/", [], "loopback"),
     ("http://0x7f.1:{port}/", [], "loopback"),
     ("file:///etc/passwd", [], "only absolute http"),
     ("https://cdn.example:8443/", [], "not in any allow list")],
)  # fmt: skip
def test_every_redirect_hop_is_checked_like_the_first(
    port: int, location: str, answer: list[str], reason: str
) -> None:
    record = Record(["127.0.0.1"], answer)  # localhost first, then the redirect's name
    anywhere = f"*:{port}"
    client = fetch(record, "*", anywhere, insecure=[anywhere], loopback=["localhost"])
    target = location.format(port=port)
    with pytest.raises(EgressRefused, match=reason):
        client.get(f"http://localhost:{port}/redirect?to={target}")
    assert [address for _, address, _ in record.connects] == ["127.0.0.1"]


def test_rebinding_cannot_move_the_connection() -> None:
    # The name resolves once, to a public address; a second lookup would say loopback. Both
    # requests go to the first, checked address (and are stopped before connecting).
    record = Record(["93.184.216.34"], ["127.0.0.1"])
    client = fetch(record, "rebind.example")
    for _ in range(2):
        with pytest.raises(Stopped):
            client.get("https://rebind.example/")
    assert record.lookups == ["rebind.example"]
    assert record.connects == [("rebind.example", "93.184.216.34", 443)] * 2


def test_a_name_resolving_to_any_refused_address_is_refused() -> None:
    record = Record(["93.184.216.34", "::ffff:127.0.0.1"])
    with pytest.raises(EgressRefused, match="IPv4-mapped"):
        fetch(record, "mixed.example").get("https://mixed.example/")
    assert record.connects == []


def test_plain_http_and_denied_hosts_are_refused_before_resolving() -> None:
    record = Record()
    egress = ConnectorEgress.model_validate({"allowHosts": ["api.example", "bad.example"]})
    rules = EgressRules.for_connector(
        "t", egress, packs=[PackEgress("sec", deny_hosts=("bad.example",))]
    )
    client = SafeFetch(rules, resolver=record.resolve, on_connect=record.on_connect)
    with pytest.raises(EgressRefused, match="plain http"):
        client.get("http://api.example/")
    with pytest.raises(EgressRefused, match="denied"):
        client.get("https://bad.example/")
    assert record.lookups == [] and record.connects == []


def test_redirects_are_counted(port: int) -> None:
    record = Record()
    client = fetch(record, f"127.0.0.1:{port}", loopback=["127.0.0.1"], max_redirects=2)
    with pytest.raises(HttpFailed, match="more than 2 redirects"):
        client.get(f"http://127.0.0.1:{port}/loop")
    assert record.connects == [("127.0.0.1", "127.0.0.1", port)] * 3


def test_a_303_after_post_becomes_get_and_credentials_stay_on_their_origin(port: int) -> None:
    record = Record(["127.0.0.1"])
    hosts = (f"127.0.0.1:{port}", f"localhost:{port}")
    client = fetch(record, *hosts, loopback=["127.0.0.1", "localhost"])
    response = client.request(
        "POST",
        f"http://127.0.0.1:{port}/redirect?status=303&to=http://localhost:{port}/echo",
        headers={"Authorization": "Bearer secret"},
        content=b"payload",
    )
    assert response.body == f"GET auth=None host=localhost:{port}".encode()
    assert response.url == f"http://localhost:{port}/echo"
    same_origin = client.get(f"http://127.0.0.1:{port}/echo", headers={"Authorization": "x"})
    assert same_origin.body.startswith(b"GET auth=x")


def test_sizes_are_capped(port: int) -> None:
    client = fetch(Record(), f"127.0.0.1:{port}", loopback=["127.0.0.1"], max_bytes=4999)
    with pytest.raises(HttpFailed, match="more than 4999 bytes"):
        client.get(f"http://127.0.0.1:{port}/big")
    assert len(client.get(f"http://127.0.0.1:{port}/big", max_bytes=5000).body) == 5000


def test_the_total_time_is_capped(port: int) -> None:
    ticks = iter(range(0, 10_000, 50))
    client = fetch(
        Record(), f"127.0.0.1:{port}", loopback=["127.0.0.1"],
        total_timeout=60, monotonic=lambda: float(next(ticks)),
    )  # fmt: skip
    with pytest.raises(HttpFailed, match="took longer than 60 seconds"):
        client.get(f"http://127.0.0.1:{port}/redirect?to=/big")
