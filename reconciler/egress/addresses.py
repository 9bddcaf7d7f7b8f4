"""Which IP addresses egress may never reach, whatever the allow lists say.

SafeFetch (and, to come, the egress proxy) call `refusal` on every address before connecting:
a literal address in a URL, and every address a name resolved to. The rules are explicit
tables, not `ipaddress.is_global`: the standard library calls `::ffff:127.0.0.1` not loopback
and `64:ff9b::7f00:1` or `2002:7f00:1::` global. An IPv6 address that embeds an IPv4 address
(mapped, compatible, translated, 6to4, NAT64, Teredo) is refused when the embedded address is.
specs/egress.md lists every range."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address
_net = ipaddress.ip_network

# Checked in order: a specific address (metadata) before the range that holds it.
V4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("169.254.169.254/32", "the cloud metadata address"),
        ("100.100.100.200/32", "the cloud metadata address (Alibaba)"),
        ("192.0.0.192/32", "the cloud metadata address (Oracle)"),
        ("255.255.255.255/32", "broadcast"),
        ("0.0.0.0/8", "this network / unspecified (0.0.0.0/8)"),
        ("10.0.0.0/8", "private (10.0.0.0/8)"),
        ("100.64.0.0/10", "shared CGNAT space (100.64.0.0/10)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        ("169.254.0.0/16", "link-local (169.254.0.0/16)"),
        ("172.16.0.0/12", "private (172.16.0.0/12)"),
        ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.0/24", "documentation (192.0.2.0/24)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast (192.88.99.0/24)"),
        ("192.168.0.0/16", "private (192.168.0.0/16)"),
        ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
        ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
        ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    )
)

V6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("fd00:ec2::254/128", "the cloud metadata address (AWS, IPv6)"),
        ("fd20:ce::254/128", "the cloud metadata address (Google Cloud, IPv6)"),
        ("::/128", "unspecified (::)"),
        ("::1/128", "loopback (::1)"),
        ("::/96", "IPv4-compatible IPv6, deprecated (::/96)"),
        ("::ffff:0:0:0/96", "IPv4-translated IPv6 (::ffff:0:0:0/96)"),
        ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
        ("100::/64", "discard-only (100::/64)"),
        ("2001::/23", "IETF protocol assignments, Teredo included (2001::/23)"),
        ("2001:db8::/32", "documentation (2001:db8::/32)"),
        ("3fff::/20", "documentation (3fff::/20)"),
        ("5f00::/16", "segment routing SIDs (5f00::/16)"),
        ("fc00::/7", "private, unique local (fc00::/7)"),
        ("fe80::/10", "link-local (fe80::/10)"),
        ("fec0::/10", "site-local, deprecated (fec0::/10)"),
        ("ff00::/8", "multicast (ff00::/8)"),
    )
)


def refusal(ip: str) -> str | None:
    """Why `ip` (an IPv4 or IPv6 address, an IPv6 zone id allowed) may not be reached, or None."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip!r} is not an IP address"
    if isinstance(address, IPv4):
        return _v4_refusal(address)
    if address.scope_id:
        return f"{address}: an IPv6 zone id (only link-local addresses carry one)"
    for kind, embedded in _embedded(address):
        why = _v4_refusal(embedded)
        if why is not None:
            return f"{address} is {embedded} in {kind} form: {why}"
    return _v6_refusal(address)


def is_plain_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8 and ::1 written plainly (no IPv6 disguise, no zone id)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, IPv6) and address.scope_id:
        return False
    return address.is_loopback


def _v4_refusal(address: IPv4) -> str | None:
    for network, why in V4_REFUSED:
        if address in network:
            return why
    return None


def _v6_refusal(address: IPv6) -> str | None:
    for network, why in V6_REFUSED:
        if address in network:
            return why
    return None


def _embedded(address: IPv6) -> list[tuple[str, IPv4]]:
    """Every IPv4 address `address` carries, with the name of the form that carries it."""
    found: list[tuple[str, IPv4]] = []
    for kind, extract in _FORMS:
        embedded = extract(address)
        if embedded is not None:
            found.append((kind, embedded))
    return found


def _low32(address: IPv6, network: str) -> IPv4 | None:
    if address not in _net(network):
        return None
    return IPv4(int(address) & 0xFFFFFFFF)


def _compatible(address: IPv6) -> IPv4 | None:
    # `::` and `::1` are IPv6's own unspecified and loopback addresses, judged as IPv6.
    if int(address) <= 1:
        return None
    return _low32(address, "::/96")


def _six_to_four(address: IPv6) -> IPv4 | None:
    return address.sixtofour


def _teredo_client(address: IPv6) -> IPv4 | None:
    # The client's address is stored inverted, so that NAT boxes do not rewrite it.
    return address.teredo[1] if address.teredo else None


def _teredo_server(address: IPv6) -> IPv4 | None:
    return address.teredo[0] if address.teredo else None


def _nat64_local(address: IPv6) -> IPv4 | None:
    # RFC 6052 with a /48 prefix: the IPv4 address straddles the reserved "u" octet (bits 64-71).
    if address not in _net("64:ff9b:1::/48"):
        return None
    value = int(address)
    high = (value >> 64) & 0xFFFF
    low = (value >> 40) & 0xFFFF
    return IPv4((high << 16) | low)


_FORMS: tuple[tuple[str, Callable[[IPv6], IPv4 | None]], ...] = (
    ("IPv4-mapped IPv6", lambda a: _low32(a, "::ffff:0:0/96")),
    ("IPv4-compatible IPv6", _compatible),
    ("IPv4-translated IPv6", lambda a: _low32(a, "::ffff:0:0:0/96")),
    ("6to4", _six_to_four),
    ("NAT64", lambda a: _low32(a, "64:ff9b::/96")),
    ("local-use NAT64", _nat64_local),
    ("Teredo client", _teredo_client),
    ("Teredo server", _teredo_server),
)
