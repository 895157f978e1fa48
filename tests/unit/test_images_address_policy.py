"""Which addresses an image fetch may reach: the policy as a table."""

from __future__ import annotations

import ipaddress

import pytest

from processors.images_ssrf import AddressPolicy, classify, embedded_ipv4, parse_address

DEFAULT = AddressPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("169.254.1.1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("192.0.0.192", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "a special-purpose address"),
        ("198.18.0.1", "a special-purpose address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a special-purpose address"),
        ("::ffff:10.0.0.5", "a private address (IPv4 10.0.0.5 inside IPv6)"),
        ("::ffff:127.0.0.1", "a loopback address (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:169.254.169.254", "a cloud metadata address (IPv4 169.254.169.254 inside IPv6)"),
        ("2002:a00:5::1", "a private address (IPv4 10.0.0.5 inside IPv6)"),
        ("64:ff9b::7f00:1", "a loopback address (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_default_policy_table(address: str, reason: str | None) -> None:
    assert DEFAULT.refusal(ipaddress.ip_address(address)) == reason
    assert classify(ipaddress.ip_address(address)) == reason


def test_a_zone_id_does_not_hide_a_link_local_or_metadata_address() -> None:
    assert DEFAULT.refusal(ipaddress.ip_address("fe80::1%eth0")) == "a link-local address"
    wide = AddressPolicy.parse(("fd00::/8",))
    assert wide.refusal(ipaddress.ip_address("fd00:ec2::254%1")) == "a cloud metadata address"


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
    assert policy.refusal(private, "other.internal") == "a private address"
    assert policy.refusal(metadata, "images.internal") == "a cloud metadata address"


@pytest.mark.parametrize("entry", ["http://example.com", "a..b", "-bad.example", "10.0.0.0/33", "*.example.com"])
def test_allow_list_entries_that_are_neither_hosts_nor_networks_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor an address"):
        AddressPolicy.parse((entry,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.5", "10.0.0.5"), ("[::1]", "::1"), ("::ffff:7f00:1", "::ffff:7f00:1"),
     ("example.com", None), ("0x7f.1", None), ("2130706433", None)],
)
def test_parse_address_reads_literals_and_leaves_names_to_the_resolver(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_embedded_ipv4_finds_mapped_6to4_and_nat64_forms() -> None:
    assert str(embedded_ipv4(ipaddress.ip_address("::ffff:1.2.3.4"))) == "1.2.3.4"
    assert str(embedded_ipv4(ipaddress.ip_address("2002:102:304::"))) == "1.2.3.4"
    assert str(embedded_ipv4(ipaddress.ip_address("64:ff9b::102:304"))) == "1.2.3.4"
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("1.2.3.4")) is None
