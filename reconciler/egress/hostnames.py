"""What a URL's host really is: one canonical DNS name, or one IP address.

Attackers spell `127.0.0.1` as `2130706433`, `0177.0.0.1`, `0x7f.1` or `127.1`, add a trailing
dot, wrap an IPv6 address with a zone id, or use look-alike Unicode. `parse_host` reads a host
the way resolvers and browsers do (the WHATWG URL host parser: a host whose last label is a
number is an IPv4 address in inet_aton's forms, or invalid), so every numeric spelling becomes
the address it reaches and is checked as an address (`addresses.refusal`). A name is converted
with IDNA, lower-cased and must be a valid DNS name; anything else is refused. The rules match
the canonical form, and SafeFetch sends exactly that form."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from reconciler.errors import ClonedError

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


class HostRefused(ClonedError):
    """A host that is not a valid DNS name or IP address in any spelling."""


@dataclass(frozen=True)
class Host:
    """A host in canonical form: `name` (lower-case ASCII, no trailing dot) or `address`."""

    name: str | None = None
    address: str | None = None

    @property
    def text(self) -> str:
        """The canonical host as rules match it and as a URL carries it (IPv6 in brackets)."""
        if self.name is not None:
            return self.name
        assert self.address is not None
        return f"[{self.address}]" if ":" in self.address else self.address

    @property
    def key(self) -> str:
        """The host without brackets: what allow-list patterns compare with."""
        return self.name if self.name is not None else str(self.address)


def parse_host(raw: str) -> Host:
    """The canonical form of `raw` (a URL's host, IPv6 in brackets); `HostRefused` if none."""
    if not raw:
        raise HostRefused("a URL without a host")
    if raw.startswith("["):
        return Host(address=_ipv6(raw))
    if ":" in raw:
        raise HostRefused(f"{raw!r}: an IPv6 address must be written in brackets")
    text = _ascii(raw).lower()
    if text.endswith("."):
        text = text[:-1]  # the root label: `example.org.` is `example.org`
    labels = text.split(".")
    if labels and NUMBER.match(labels[-1]):
        return Host(address=_ipv4(raw, labels))
    if len(text) > 253 or not all(LABEL.match(label) for label in labels):
        raise HostRefused(f"{raw!r} is not a valid DNS name")
    return Host(name=text)


def _ascii(raw: str) -> str:
    if raw.isascii():
        return raw
    try:
        return raw.encode("idna").decode("ascii")
    except UnicodeError:
        raise HostRefused(f"{raw!r}: a non-ASCII name that IDNA cannot convert") from None


def _ipv6(raw: str) -> str:
    if not raw.endswith("]"):
        raise HostRefused(f"{raw!r}: an unterminated IPv6 address")
    inner = raw[1:-1].replace("%25", "%", 1)  # RFC 6874 writes the zone id's `%` as `%25`
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise HostRefused(f"{raw!r} is not a valid IPv6 address") from None
    return str(address)  # compressed, lower-case, the zone id kept so it can be refused


def _ipv4(raw: str, labels: list[str]) -> str:
    """inet_aton's forms: 1 to 4 parts, each decimal, octal (`0…`) or hex (`0x…`); the last
    part fills the bytes the others leave."""
    if len(labels) > 4 or not all(labels):
        raise HostRefused(f"{raw!r} is not a valid IPv4 address")
    try:
        parts = [_number(label) for label in labels]
    except ValueError:
        raise HostRefused(f"{raw!r} is not a valid IPv4 address") from None
    *leading, last = parts
    if any(part > 255 for part in leading) or last >= 256 ** (5 - len(parts)):
        raise HostRefused(f"{raw!r} is not a valid IPv4 address (a part is too large)")
    value = last
    for index, part in enumerate(leading):
        value += part << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label, 10)


DEFAULT_PORTS = {"https": 443, "http": 80}
LOCAL_NAMES = frozenset({"localhost"})
"""Names that mean this machine wherever they are resolved."""
FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class Target:
    """Where a URL leads, canonical: scheme, host, port and the path with its query."""

    scheme: str
    host: Host
    port: int
    path: str = "/"

    @property
    def url(self) -> str:
        """The canonical URL: what SafeFetch requests and redirects resolve against."""
        default = DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host.text}{port}{self.path}"


def parse_url(url: str) -> Target:
    """The target of an absolute http(s) URL; `HostRefused` for anything ambiguous.

    Refused before any rule is read: credentials in the URL (`user@host` is how a URL hides
    its real host), a backslash, white space or control characters (parsers disagree on
    them), a scheme other than http(s), a bad port."""
    if FORBIDDEN.search(url):
        raise HostRefused(f"{url!r}: white space, control characters or a backslash")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise HostRefused(f"{url!r}: only absolute http and https URLs are fetched")
    authority, path = _split_authority(rest)
    if "@" in authority:
        raise HostRefused(f"{url!r}: credentials in a URL are refused")
    raw_host, port = _split_port(url, authority, DEFAULT_PORTS[scheme])
    return Target(scheme, parse_host(raw_host), port, path)


def _split_authority(rest: str) -> tuple[str, str]:
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    authority, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    path = path.split("#", 1)[0]  # a fragment never leaves the client
    if not path.startswith("/"):
        path = "/" + path
    return authority, path


def _split_port(url: str, authority: str, default: int) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        host, tail = (authority, "") if end < 0 else (authority[: end + 1], authority[end + 1 :])
    else:
        host, colon, port_text = authority.partition(":")
        tail = colon + port_text
    if not tail or tail == ":":
        return host, default
    if not tail.startswith(":") or not tail[1:].isdigit() or not tail[1:].isascii():
        raise HostRefused(f"{url!r}: a bad port")
    port = int(tail[1:])
    if not 0 < port < 65536:
        raise HostRefused(f"{url!r}: port {port} is out of range")
    return host, port
