"""Hostile URL spellings meet the egress policy in the form aiohttp will connect to (yarl's raw_host)."""

from __future__ import annotations

import pytest
from yarl import URL

from processors.egress.http import checked_url, connect_host
from processors.egress.policy import AddressPolicy, EgressRefused, display_url

DEFAULT = AddressPolicy()
RARE = ("is a rare IP address format (RFC 3986 section 7.4); write the address as four decimal numbers "
        "(a.b.c.d) or use a name")
LOOPBACK = "its address is loopback (RFC 1122)"


@pytest.mark.parametrize(
    ("url", "kind", "problem"),
    [
        # IDNA: Unicode full stops and digits become ASCII before aiohttp connects
        ("http://127\u30020\u30020\u30021/", "address", LOOPBACK),  # U+3002 ideographic full stop
        ("http://169\uff0e254\uff0e169\uff0e254/", "address", "its address is a cloud metadata address"),
        ("http://10\uff610\uff610\uff615/", "address", "its address is private-use (RFC 1918)"),  # U+FF61
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "address", LOOPBACK),  # full-width digits
        ("http://\u2460\u2461\u2466.0.0.1/", "address", LOOPBACK),  # circled digits 1 2 7
        ("http://\uff11\uff10\uff10\uff0e\uff16\uff14\uff0e0\uff0e1/", "address",
         "its address is shared address space (carrier-grade NAT) (RFC 6598)"),
        # numeric forms other than a canonical dotted quad
        ("http://127.1/", "host", f"its host '127.1' {RARE}"),
        ("http://2130706433/", "host", f"its host '2130706433' {RARE}"),
        ("http://0177.0.0.1/", "host", f"its host '0177.0.0.1' {RARE}"),
        ("http://0x7f.0.0.1/", "host", f"its host '0x7f.0.0.1' {RARE}"),
        ("http://0x7f000001/", "host", f"its host '0x7f000001' {RARE}"),
        ("http://127.0.0.1./", "host", f"its host '127.0.0.1.' {RARE}"),
        ("http://127.0.0.1../", "host", f"its host '127.0.0.1.' {RARE}"),
        ("http://127.000.000.001/", "host", f"its host '127.000.000.001' {RARE}"),
        ("http://1.2.3.4.5/", "host", f"its host '1.2.3.4.5' {RARE}"),
        ("http://256.0.0.1/", "host", f"its host '256.0.0.1' {RARE}"),
        ("http://example.0x10/", "host", f"its host 'example.0x10' {RARE}"),
        ("http://127\u30021/", "host", f"its host '127.1' {RARE}"),  # a Unicode stop in a short form
        # IPv6 literals, IPv4 inside
        ("http://[::ffff:127.0.0.1]/", "address", f"{LOOPBACK} inside IPv4-mapped (RFC 4291)"),
        ("http://[::127.0.0.1]/", "address", f"{LOOPBACK} inside deprecated IPv4-compatible (RFC 4291)"),
        ("http://[::8.8.8.8]/", "address", "its address is deprecated IPv4-compatible (RFC 4291)"),
        ("http://[::ffff:0:127.0.0.1]/", "address", f"{LOOPBACK} inside IPv4-translated (RFC 2765)"),
        ("http://[64:ff9b:1::a00:5]/", "address", "its address is local-use IPv4/IPv6 translation (RFC 8215)"),
        ("http://[64:ff9b::a9fe:a9fe]/", "address",
         "its address is a cloud metadata address inside IPv4-IPv6 translation (RFC 6052)"),
        ("http://[2002:7f00:1::]/", "address", f"{LOOPBACK} inside 6to4 (RFC 3056)"),
        ("http://[fec0::1]/", "address", "its address is deprecated site-local (RFC 3879)"),
        ("http://[fe80::1%25eth0]/", "address", "its address is link-local unicast (RFC 4291)"),
        ("http://[::1]/", "address", "its address is loopback (RFC 4291)"),
        ("http://[fd00:ec2::254]/", "address", "its address is a cloud metadata address"),
        # names that are not names
        ("http://127%2e0%2e0%2e1/", "host", "its host '127%2e0%2e0%2e1' is not a valid host name"),
        ("http://ex ample.com/", "host", "its host 'ex ample.com' is not a valid host name"),
        ("http://a..b/", "host", "its host 'a..b' is not a valid host name"),
        ("http://xn--/", "host", "its host 'xn--' is not a valid host name"),
        ("http://" + "a" * 64 + ".com/", "host", f"its host '{'a' * 64}.com' is not a valid host name"),
        # userinfo: refused by the address, and the problem never repeats the URL
        ("http://admin:hunter2@10.0.0.5/", "address", "its address is private-use (RFC 1918)"),
        # shapes
        ("http:///x.png", "url", "it names no host"),
        ("file:///etc/passwd", "scheme", "its scheme is 'file', not http or https"),
        ("gopher://example.com/", "scheme", "its scheme is 'gopher', not http or https"),
        ("http://example.com/" + "a" * 8200, "url", "it is longer than 8192 characters"),
    ],
)
def test_hostile_urls_are_refused_with_the_rule_they_break(url: str, kind: str, problem: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        checked_url(url, DEFAULT)
    assert (caught.value.kind, caught.value.problem) == (kind, problem)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://[::1/", "http://a\u200bb.com/", "http://h:99999999/",
                                 "http://" + "a" * 70 + "\u00e9/"])
def test_urls_the_client_cannot_parse_are_refused_as_unparseable(url: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        checked_url(url, DEFAULT)
    assert caught.value.kind == "url" and caught.value.problem.startswith("it cannot be parsed (")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/a.png", "example.com"),
        ("http://EXAMPLE.com./a.png", "example.com."),
        ("https://b\u00fccher.de/", "xn--bcher-kva.de"),
        ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", "localhost"),  # a name: the resolver judges
        ("http://93.184.216.34/", "93.184.216.34"),
        ("http://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:808:808"),
        ("http://123.example/", "123.example"),
    ],
)
def test_acceptable_urls_pass_with_the_host_aiohttp_will_use(url: str, host: str) -> None:
    assert connect_host(checked_url(url, DEFAULT)) == host


def test_an_allowed_network_opens_its_literals_in_any_unicode_spelling() -> None:
    policy = AddressPolicy.parse(("127.0.0.1",))
    assert checked_url("http://127\u30020\u30020\u30021:8080/", policy).raw_host == "127.0.0.1"
    with pytest.raises(EgressRefused, match="rare IP address format"):
        checked_url("http://127.1:8080/", policy)  # an allow entry never opens a rare form


def test_opening_a_configured_host_allows_that_host_only() -> None:
    opened = DEFAULT.opening("127.0.0.1")
    assert checked_url("http://127.0.0.1:5000/", opened).raw_host == "127.0.0.1"
    with pytest.raises(EgressRefused, match="loopback"):
        checked_url("http://127.0.0.2:5000/", opened)
    assert DEFAULT.opening("LibreTranslate.internal.").allow_hosts == frozenset({"libretranslate.internal"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [("http://u:p@h/x", "http://h/x"), ("http://u:p@[::1/x", "http://[::1/x"), ("h" * 400, "h" * 300 + "...")],
)
def test_display_url_drops_credentials_and_bounds_length(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_connect_host_collapses_trailing_dots_as_aiohttp_does() -> None:
    assert connect_host(URL("http://example.com../")) == "example.com."
