"""The egress proxy's reading of one request head: what a connector asked to reach.

The proxy (`proxy.py`) reads a request head with these caps and this grammar before any rule is
read: `CONNECT host:port HTTP/1.1` (a TLS tunnel; the port is required, as RFC 9110 says) or
an absolute-URI request over plain http (`GET http://host/path HTTP/1.1`). The target is made
canonical by `hostnames` exactly as SafeFetch's URLs are, so the rules see one spelling. A head
that is not one of these is a `BadRequest` with the status the client gets (400, 411, 431) and
a one-line reason. The forwarded head of a plain http request is rebuilt here: origin-form
request line, the canonical `Host`, hop-by-hop and proxy headers dropped, `Connection: close`
(one request per connection, so every request on it was the one checked)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from reconciler.egress.hostnames import HostRefused, Target, parse_url

MAX_HEAD = 16 * 1024
"""The largest request head (request line and headers) the proxy reads, in bytes."""

MAX_HEADERS = 100
"""The most header lines a request head may carry."""

METHOD = re.compile(r"^[A-Z]{3,16}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


class BadRequest(Exception):
    """A request head the proxy does not forward: the status it answers and why."""

    def __init__(self, status: int, reason: str, target: Target | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.target = target


@dataclass(frozen=True)
class ProxyRequest:
    """One parsed request head: a CONNECT tunnel or a plain http request to forward."""

    method: str
    target: Target
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def tunnel(self) -> bool:
        """True for CONNECT: after the proxy's 200 the bytes are the client's own."""
        return self.method == "CONNECT"


async def read_head(reader: asyncio.StreamReader) -> list[str]:
    """The request line and header lines (without line ends), at most `MAX_HEAD` bytes."""
    lines: list[str] = []
    size = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise BadRequest(400, "the request head ended before its blank line") from None
        except asyncio.LimitOverrunError:
            raise BadRequest(431, f"the request head is over {MAX_HEAD} bytes") from None
        size += len(raw)
        if size > MAX_HEAD:
            raise BadRequest(431, f"the request head is over {MAX_HEAD} bytes")
        line = raw.rstrip(b"\r\n")
        if not line:
            if lines:
                return lines
            continue  # RFC 9112 allows empty lines before the request line
        if len(lines) > MAX_HEADERS:
            raise BadRequest(431, f"the request head has more than {MAX_HEADERS} headers")
        try:
            lines.append(line.decode("ascii"))
        except UnicodeDecodeError:
            raise BadRequest(400, "the request head is not ASCII") from None


def parse_head(lines: list[str]) -> ProxyRequest:
    """The request `lines` (from `read_head`) ask for; `BadRequest` when it is not one."""
    parts = lines[0].split(" ")
    if len(parts) != 3 or not METHOD.match(parts[0]) or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(400, "a malformed request line")
    method, uri, _ = parts
    headers = tuple(_header(line) for line in lines[1:])
    if method == "CONNECT":
        return ProxyRequest(method, _authority(uri), headers)
    if not uri.lower().startswith("http://"):
        raise BadRequest(400, "only CONNECT and absolute http:// requests go through this proxy")
    try:
        target = parse_url(uri)
    except HostRefused as exc:
        raise BadRequest(400, str(exc)) from None
    names = {name.lower() for name, _ in headers}
    if "transfer-encoding" in names:
        raise BadRequest(411, "a request body must have a Content-Length", target)
    return ProxyRequest(method, target, headers)


def forwarded_head(request: ProxyRequest) -> bytes:
    """The head sent to the target for a plain http request (see the module)."""
    target = request.target
    port = "" if target.port == 80 else f":{target.port}"
    listed = {
        token.strip().lower()
        for name, value in request.headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    kept = [
        f"{name}: {value}"
        for name, value in request.headers
        if name.lower() not in HOP_BY_HOP and name.lower() not in listed
    ]
    lines = [f"{request.method} {target.path} HTTP/1.1", f"Host: {target.host.text}{port}"]
    lines += [*kept, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("ascii")


def body_length(request: ProxyRequest) -> int:
    """How many body bytes follow a plain http request's head (its Content-Length, or 0)."""
    values = {value.strip() for name, value in request.headers if name.lower() == "content-length"}
    if not values:
        return 0
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise BadRequest(400, "a bad or conflicting Content-Length", request.target)
    return int(values.pop())


def _header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not HEADER_NAME.match(name):
        # A name with white space before the colon is how requests are smuggled (RFC 9112 5.1).
        raise BadRequest(400, "a malformed header line")
    return name, value.strip(" \t")


def _authority(uri: str) -> Target:
    """A CONNECT target `host:port`, checked as an https URL's host and port would be."""
    if any(char in uri for char in "/?#@") or not re.search(r":[0-9]+$", uri):
        raise BadRequest(400, "CONNECT needs host:port (and nothing else)")
    try:
        target = parse_url(f"https://{uri}/")
    except HostRefused as exc:
        raise BadRequest(400, str(exc)) from None
    return target
