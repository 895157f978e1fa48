"""What is private: the IANA special-purpose address registries as data, plus what they leave out.

Sources: the IANA IPv4 Special-Purpose Address Registry and the IANA IPv6
Special-Purpose Address Registry (RFC 6890, updated by RFC 8190), as of 2025.
Each entry keeps the registry's "Globally Reachable" flag; an entry that is
not globally reachable is refused. Where the registry says "N/A" (deprecated
blocks, or blocks whose reachability depends on the IPv4 address inside), this
table decides and says so in a comment. ``embeds`` marks IPv6 blocks that carry
an IPv4 address: such an address is refused when the IPv4 inside is refused,
and otherwise by its own flag (processors.egress.policy).

Blocks that are not special-purpose but still must not be reached (multicast,
the deprecated site-local and IPv4-compatible forms) are added at the end of
each table, named by the RFC that defines them. Lookups take the most
specific entry, so 192.0.0.9/32 (globally reachable) wins over 192.0.0.0/24.
Cloud metadata addresses are a separate table: some are public addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# (network, name, defined by, globally reachable, embeds IPv4 as)
IPV4: tuple[tuple[str, str, str, bool, str | None], ...] = (
    ("0.0.0.0/8", "this network", "RFC 791", False, None),
    ("0.0.0.0/32", "this host on this network", "RFC 1122", False, None),
    ("10.0.0.0/8", "private-use", "RFC 1918", False, None),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)", "RFC 6598", False, None),
    ("127.0.0.0/8", "loopback", "RFC 1122", False, None),
    ("169.254.0.0/16", "link-local", "RFC 3927", False, None),
    ("172.16.0.0/12", "private-use", "RFC 1918", False, None),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890", False, None),
    ("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335", False, None),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False, None),
    ("192.0.0.9/32", "port control protocol anycast", "RFC 7723", True, None),
    ("192.0.0.10/32", "traversal using relays around NAT anycast", "RFC 8155", True, None),
    ("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880", False, None),
    ("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880", False, None),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737", False, None),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535", True, None),
    ("192.52.193.0/24", "AMT", "RFC 7450", True, None),
    # Registry: deprecated, reachability N/A. No relay should be used on purpose: refused.
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526", False, None),
    ("192.88.99.2/32", "6a44 relay anycast", "RFC 6751", True, None),
    ("192.168.0.0/16", "private-use", "RFC 1918", False, None),
    ("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534", True, None),
    ("198.18.0.0/15", "benchmarking", "RFC 2544", False, None),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737", False, None),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737", False, None),
    ("240.0.0.0/4", "reserved", "RFC 1112", False, None),
    ("255.255.255.255/32", "limited broadcast", "RFC 919", False, None),
    # Not special-purpose, but a connection to a group address is never an image server.
    ("224.0.0.0/4", "multicast", "RFC 5771", False, None),
)

IPV6: tuple[tuple[str, str, str, bool, str | None], ...] = (
    ("::1/128", "loopback", "RFC 4291", False, None),
    ("::/128", "unspecified", "RFC 4291", False, None),
    # Registry: not globally reachable as IPv6; a socket connects to the IPv4 inside, so that decides.
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", True, "low32"),
    ("64:ff9b::/96", "IPv4-IPv6 translation", "RFC 6052", True, "low32"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215", False, None),
    ("100::/64", "discard-only", "RFC 6666", False, None),
    ("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780", False, None),
    ("2001::/23", "IETF protocol assignments", "RFC 2928", False, None),
    # Registry: N/A; reached through relays towards the client's IPv4 address: that decides.
    ("2001::/32", "Teredo", "RFC 4380", True, "teredo"),
    ("2001:1::1/128", "port control protocol anycast", "RFC 7723", True, None),
    ("2001:1::2/128", "traversal using relays around NAT anycast", "RFC 8155", True, None),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665", True, None),
    ("2001:2::/48", "benchmarking", "RFC 5180", False, None),
    ("2001:3::/32", "AMT", "RFC 7450", True, None),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535", True, None),
    # Registry: deprecated (previously ORCHID), N/A: refused.
    ("2001:10::/28", "deprecated ORCHID", "RFC 4843", False, None),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343", True, None),
    ("2001:30::/28", "drone remote ID entity tags", "RFC 9374", True, None),
    ("2001:db8::/32", "documentation", "RFC 3849", False, None),
    # Registry: N/A; the 6to4 router is at the IPv4 address inside: that decides.
    ("2002::/16", "6to4", "RFC 3056", True, "6to4"),
    ("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534", True, None),
    ("3fff::/20", "documentation", "RFC 9637", False, None),
    ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602", False, None),
    ("fc00::/7", "unique-local", "RFC 4193", False, None),
    ("fe80::/10", "link-local unicast", "RFC 4291", False, None),
    # Not in the registry, refused all the same:
    ("ff00::/8", "multicast", "RFC 4291", False, None),
    ("fec0::/10", "deprecated site-local", "RFC 3879", False, None),
    ("::/96", "deprecated IPv4-compatible", "RFC 4291", False, "low32"),
    ("::ffff:0:0:0/96", "IPv4-translated", "RFC 2765", False, "low32"),
)

# Everything outside 2000::/3 that no entry above names is still unassigned (IPv6 Address Space registry).
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
UNASSIGNED = ("outside global unicast 2000::/3", "RFC 4291")

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server: a public address, so only this table catches it
    )
)
METADATA_RULE = "a cloud metadata address"


@dataclass(frozen=True, slots=True)
class Rule:
    """One registry entry: ``label`` is what a refusal names, e.g. ``loopback (RFC 1122)``."""

    network: Network
    name: str
    rfc: str
    reachable: bool
    embeds: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.rfc})"


def _rules(table: tuple[tuple[str, str, str, bool, str | None], ...]) -> tuple[Rule, ...]:
    rules = [Rule(ipaddress.ip_network(n), name, rfc, ok, embeds) for n, name, rfc, ok, embeds in table]
    return tuple(sorted(rules, key=lambda rule: rule.network.prefixlen, reverse=True))


RULES: dict[int, tuple[Rule, ...]] = {4: _rules(IPV4), 6: _rules(IPV6)}


def rule_for(address: Address) -> Rule | None:
    """The most specific registry entry holding ``address``, or None (ordinary unicast)."""
    return next((rule for rule in RULES[address.version] if address in rule.network), None)


def inner_ipv4(address: ipaddress.IPv6Address, embeds: str) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address of block kind ``embeds`` carries."""
    if embeds == "teredo" and address.teredo is not None:
        return address.teredo  # (server, client): both are reached
    if embeds == "6to4" and address.sixtofour is not None:
        return (address.sixtofour,)
    return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
