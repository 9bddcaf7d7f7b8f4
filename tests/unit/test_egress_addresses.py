"""Every address egress refuses, in every spelling an attacker has: plain ranges, cloud metadata,
IPv6 disguises of IPv4 addresses, and the numeric host forms of a URL (decimal, octal, hex,
short dotted), which must reach `refusal` as the address they are."""

from __future__ import annotations

import pytest

from reconciler.egress.addresses import is_plain_loopback, refusal
from reconciler.egress.hostnames import HostRefused, parse_host, parse_url

REFUSED = [
    # (address, a word the reason must contain)
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("::", "unspecified"),
    ("192.0.0.8", "IETF protocol"),
    ("192.0.0.170", "IETF protocol"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("100::1", "discard"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("fd20:ce::254", "metadata"),
    ("100.100.100.200", "address (Alibaba)"),
    ("192.0.0.192", "address (Oracle)"),
    # IPv6 disguises of refused IPv4 addresses
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:7f00:1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("::ffff:0:127.0.0.1", "IPv4-translated"),
    ("2002:7f00:1::", "6to4"),
    ("2002:a9fe:a9fe::1", "metadata"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("64:ff9b::169.254.169.254", "metadata"),
    ("64:ff9b:1:7f00:0:100::", "local-use NAT64"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo client"),  # client 127.0.0.1, inverted
    ("2001:0:4136:e378::1", "Teredo"),  # any Teredo address: 2001::/23 is refused whole
    ("fe80::1%eth0", "zone id"),
    ("not-an-address", "not an IP address"),
]


@pytest.mark.parametrize(("ip", "word"), REFUSED)
def test_refused_addresses_say_why(ip: str, word: str) -> None:
    reason = refusal(ip)
    assert reason is not None and word in reason


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8",
           "64:ff9b::808:808", "2002:808:808::1", "100.63.255.255", "100.128.0.0",
           "172.32.0.1", "198.20.0.1", "192.0.1.1"],
)  # fmt: skip
def test_public_addresses_pass(ip: str) -> None:
    assert refusal(ip) is None


def test_the_stdlib_gaps_are_closed() -> None:
    # Where `ipaddress` says loopback-free or global (environment-facts.md), refusal says no.
    for ip in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "192.0.0.8", "100.64.0.1"):
        assert refusal(ip) is not None


def test_plain_loopback_is_only_the_plain_forms() -> None:
    assert is_plain_loopback("127.0.0.1") and is_plain_loopback("::1")
    for ip in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "10.0.0.1", "nonsense"):
        assert not is_plain_loopback(ip)


HOST_SPELLINGS = [
    # (host as written in a URL, the address it is)
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0177.0.0.01", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7F000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("2852039166", "169.254.169.254"),
    ("012.0.0.1", "10.0.0.1"),
    ("[::1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[0:0:0:0:0:ffff:7f00:0001]", "::ffff:7f00:1"),
    ("[fe80::1%25eth0]", "fe80::1%eth0"),
]


@pytest.mark.parametrize(("host", "address"), HOST_SPELLINGS)
def test_numeric_hosts_become_the_address_they_reach_and_are_refused(
    host: str, address: str
) -> None:
    parsed = parse_host(host)
    assert parsed.address == address and parsed.name is None
    assert refusal(parsed.address) is not None


@pytest.mark.parametrize(
    ("host", "name"),
    [("Example.ORG", "example.org"), ("example.org.", "example.org"),
     ("bücher.example", "xn--bcher-kva.example"), ("ＥＸＡＭＰＬＥ.org", "example.org"),
     ("a-b.example", "a-b.example")],
)  # fmt: skip
def test_names_are_canonical(host: str, name: str) -> None:
    assert parse_host(host).name == name


@pytest.mark.parametrize(
    "host",
    ["", "a..b", "-a.example", "a-.example", "under_score.example", "example.123", "1.2.3.4.5",
     "256.1.1.1", "08.1.1.1", "0x100.1", "127.16777216", "[::1", "[nonsense]",
     "::1", "a" * 64 + ".example", "\u200b.example", "exa mple.org"],
)  # fmt: skip
def test_a_host_that_is_not_a_name_or_address_is_refused(host: str) -> None:
    with pytest.raises(HostRefused):
        parse_host(host)


@pytest.mark.parametrize(
    ("url", "word"),
    [("https://user:pw@example.org/", "credentials"),
     ("https://example.org@evil.example/", "credentials"),
     ("https://evil.example\\@example.org/", "backslash"),
     ("https://exa mple.org/", "white space"),
     ("ftp://example.org/", "only absolute http"),
     ("file:///etc/passwd", "only absolute http"),
     ("//example.org/", "only absolute http"),
     ("https://example.org:0/", "out of range"),
     ("https://example.org:99999/", "out of range"),
     ("https://example.org:8a/", "bad port"),
     ("https://[::1]x/", "bad port")],
)  # fmt: skip
def test_ambiguous_urls_are_refused(url: str, word: str) -> None:
    with pytest.raises(HostRefused, match=word):
        parse_url(url)


def test_a_url_is_made_canonical() -> None:
    target = parse_url("HTTPS://Example.ORG.:443/a/b?q=1#frag")
    assert (target.scheme, target.host.name, target.port) == ("https", "example.org", 443)
    assert target.url == "https://example.org/a/b?q=1"
    assert parse_url("http://[::1]:8080").url == "http://[::1]:8080/"
