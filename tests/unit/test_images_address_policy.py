"""Which addresses outbound HTTP may reach: the IANA special-purpose registries as a table."""

from __future__ import annotations

import ipaddress

import pytest

from processors.egress.policy import AddressPolicy, EgressRefused, classify, embedded_ipv4, parse_literal
from processors.egress.registry import IPV4, IPV6, METADATA, RULES

DEFAULT = AddressPolicy()
MAPPED, TEREDO = "IPv4-mapped (RFC 4291)", "Teredo (RFC 4380)"


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("10.0.0.5", "private-use (RFC 1918)"),
        ("172.16.0.1", "private-use (RFC 1918)"),
        ("172.31.255.255", "private-use (RFC 1918)"),
        ("192.168.1.1", "private-use (RFC 1918)"),
        ("127.0.0.1", "loopback (RFC 1122)"),
        ("127.255.255.254", "loopback (RFC 1122)"),
        ("0.0.0.0", "this host on this network (RFC 1122)"),
        ("0.1.2.3", "this network (RFC 791)"),
        ("169.254.1.1", "link-local (RFC 3927)"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("192.0.0.192", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("100.64.0.1", "shared address space (carrier-grade NAT) (RFC 6598)"),
        ("100.127.255.254", "shared address space (carrier-grade NAT) (RFC 6598)"),
        ("224.0.0.1", "multicast (RFC 5771)"),
        ("239.255.255.250", "multicast (RFC 5771)"),
        ("240.0.0.1", "reserved (RFC 1112)"),
        ("255.255.255.255", "limited broadcast (RFC 919)"),
        ("192.0.2.10", "documentation (TEST-NET-1) (RFC 5737)"),
        ("198.51.100.7", "documentation (TEST-NET-2) (RFC 5737)"),
        ("203.0.113.9", "documentation (TEST-NET-3) (RFC 5737)"),
        ("198.18.0.1", "benchmarking (RFC 2544)"),
        ("192.0.0.1", "IPv4 service continuity prefix (RFC 7335)"),
        ("192.0.0.8", "IPv4 dummy address (RFC 7600)"),
        ("192.0.0.100", "IETF protocol assignments (RFC 6890)"),
        ("192.0.0.170", "NAT64/DNS64 discovery (RFC 8880)"),
        ("192.0.0.9", None),  # port control protocol anycast: globally reachable, inside a refused /24
        ("192.88.99.1", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.88.99.2", None),
        ("192.175.48.1", None),
        ("::1", "loopback (RFC 4291)"),
        ("::", "unspecified (RFC 4291)"),
        ("fe80::1", "link-local unicast (RFC 4291)"),
        ("fc00::1", "unique-local (RFC 4193)"),
        ("fd12:3456::1", "unique-local (RFC 4193)"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("ff02::1", "multicast (RFC 4291)"),
        ("2001:db8::1", "documentation (RFC 3849)"),
        ("3fff::1", "documentation (RFC 9637)"),
        ("100::1", "discard-only (RFC 6666)"),
        ("2001:2::1", "benchmarking (RFC 5180)"),
        ("2001:10::1", "deprecated ORCHID (RFC 4843)"),
        ("2001:100::1", "IETF protocol assignments (RFC 2928)"),
        ("5f00::1", "segment routing (SRv6) SIDs (RFC 9602)"),
        ("2001:20::1", None),
        ("4000::1", "outside global unicast 2000::/3 (RFC 4291)"),
        # the four the issue found counted as public
        ("::7f00:1", "loopback (RFC 1122) inside deprecated IPv4-compatible (RFC 4291)"),
        ("::808:808", "deprecated IPv4-compatible (RFC 4291)"),
        ("::ffff:0:7f00:1", "loopback (RFC 1122) inside IPv4-translated (RFC 2765)"),
        ("::ffff:0:808:808", "IPv4-translated (RFC 2765)"),
        ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("fec0::1", "deprecated site-local (RFC 3879)"),
        # IPv6 forms carrying an IPv4 address are judged by the IPv4 inside
        ("::ffff:10.0.0.5", f"private-use (RFC 1918) inside {MAPPED}"),
        ("::ffff:127.0.0.1", f"loopback (RFC 1122) inside {MAPPED}"),
        ("::ffff:169.254.169.254", f"a cloud metadata address inside {MAPPED}"),
        ("2002:a00:5::1", "private-use (RFC 1918) inside 6to4 (RFC 3056)"),
        ("64:ff9b::7f00:1", "loopback (RFC 1122) inside IPv4-IPv6 translation (RFC 6052)"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", f"loopback (RFC 1122) inside {TEREDO}"),  # client 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", f"documentation (TEST-NET-1) (RFC 5737) inside {TEREDO}"),
        ("2001:0:a00:5:8000:63bf:f7f7:f7f7", f"private-use (RFC 1918) inside {TEREDO}"),  # server 10.0.0.5
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),  # server 65.54.227.120, client 8.8.8.8
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
    ],
)
def test_default_policy_table(address: str, rule: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == rule
    refused = DEFAULT.refusal(ipaddress.ip_address(address))
    assert (None if refused is None else str(refused)) == (None if rule is None else f"its address is {rule}")


def test_every_registry_entry_decides_its_own_first_and_last_address_by_its_reachable_flag() -> None:
    checked = 0
    for network, _name, _rfc, reachable, embeds in (*IPV4, *IPV6):
        block = ipaddress.ip_network(network)
        for address in (block[0], block[-1]):
            owner = next(rule for rule in RULES[block.version] if address in rule.network)
            if str(owner.network) != network or embeds is not None or address in METADATA:
                continue  # a more specific entry, the IPv4 inside, or the metadata table decides
            assert (classify(address) is None) is reachable, (network, str(address))
            checked += 1
    assert checked >= 80


def test_a_zone_id_does_not_hide_a_link_local_or_metadata_address() -> None:
    assert str(DEFAULT.refusal(ipaddress.ip_address("fe80::1%eth0"))) == "its address is link-local unicast (RFC 4291)"
    wide = AddressPolicy.parse(("fd00::/8",))
    refused = wide.refusal(ipaddress.ip_address("fd00:ec2::254%1"))
    assert refused is not None and refused.metadata and refused.rule == "a cloud metadata address"


@pytest.mark.parametrize(
    ("allow", "address", "allowed"),
    [
        (("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), "127.0.0.2", False),
        (("127.0.0.1",), "::ffff:127.0.0.1", True),
        (("10.0.0.0/8",), "10.20.30.40", True),
        (("10.0.0.0/8",), "192.168.0.1", False),
        (("10.1.2.3/8",), "10.9.9.9", True),  # host bits are forgiven, as people write them
        (("fd00::/8",), "fd12::1", True),
        (("::1",), "::1", True),
        (("169.254.0.0/16",), "169.254.1.1", True),
        (("169.254.0.0/16",), "169.254.169.254", False),  # a wide network never opens metadata
        (("0.0.0.0/0",), "169.254.169.254", False),
        (("0.0.0.0/0",), "10.0.0.5", True),
        (("169.254.169.254",), "169.254.169.254", True),  # listed by itself: opened on purpose
        (("169.254.169.254/32",), "::ffff:169.254.169.254", True),
    ],
)
def test_allow_list_opens_networks_but_metadata_only_by_exact_address(
    allow: tuple[str, ...], address: str, allowed: bool
) -> None:
    policy = AddressPolicy.parse(allow)
    assert (policy.refusal(ipaddress.ip_address(address)) is None) is allowed


def test_an_allowed_host_name_may_reach_private_addresses_but_not_metadata() -> None:
    policy = AddressPolicy.parse(("Images.Internal.",))
    private, metadata = ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("169.254.169.254")
    assert policy.refusal(private, "images.internal") is None
    assert policy.refusal(private, "IMAGES.INTERNAL.") is None
    assert str(policy.refusal(private, "other.internal")) == "its address is private-use (RFC 1918)"
    assert str(policy.refusal(metadata, "images.internal")) == "its address is a cloud metadata address"


@pytest.mark.parametrize("entry", ["http://example.com", "a..b", "-bad.example", "10.0.0.0/33", "*.example.com"])
def test_allow_list_entries_that_are_neither_hosts_nor_networks_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor an address"):
        AddressPolicy.parse((entry,))


@pytest.mark.parametrize("entry", ["127.1", "2130706433", "0x7f.0.0.1"])
def test_allow_list_entries_in_rare_numeric_forms_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match=r"is a rare IP address format \(RFC 3986 section 7.4\)"):
        AddressPolicy.parse((entry,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.5", "10.0.0.5"), ("[::1]", "::1"), ("::ffff:7f00:1", "::ffff:7f00:1"), ("example.com", None)],
)
def test_parse_literal_reads_canonical_literals_and_leaves_names_to_the_resolver(
    text: str, expected: str | None
) -> None:
    parsed = parse_literal(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_embedded_ipv4_finds_mapped_6to4_nat64_and_teredo_forms() -> None:
    def inner(text: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(ipaddress.ip_address(text))]

    assert inner("::ffff:1.2.3.4") == ["1.2.3.4"]
    assert inner("2002:102:304::") == ["1.2.3.4"]
    assert inner("64:ff9b::102:304") == ["1.2.3.4"]
    assert inner("::102:304") == ["1.2.3.4"]
    assert inner("2001:0:4136:e378:8000:63bf:3fff:fdd2") == ["65.54.227.120", "192.0.2.45"]
    assert inner("2606:4700::1") == [] and inner("1.2.3.4") == []


def test_a_refusal_is_an_egress_refused_naming_its_rule() -> None:
    refused = DEFAULT.refusal(ipaddress.ip_address("10.0.0.5"))
    assert isinstance(refused, EgressRefused)
    assert (refused.kind, refused.rule, refused.metadata) == ("address", "private-use (RFC 1918)", False)
