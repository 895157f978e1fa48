"""Which addresses an image fetch may connect to (server-side request forgery policy).

An image URL comes from outside, so by default a fetch may only reach public
unicast addresses. Refused, each with the reason a message names:

```
cloud metadata     169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16, ...
unspecified        0.0.0.0/8, ::              (0.0.0.0 reaches this host on Linux)
loopback           127.0.0.0/8, ::1
link-local         169.254.0.0/16, fe80::/10
multicast          224.0.0.0/4, ff00::/8
shared (CGNAT)     100.64.0.0/10
private            10/8, 172.16/12, 192.168/16, fc00::/7
reserved           240.0.0.0/4 (with 255.255.255.255)
special-purpose    anything else Python does not call global (documentation, benchmarking, ...)
```
IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4
``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the IPv4 address inside.

``MILLSTREAM_FETCH_ALLOW_HOSTS`` opens hosts (exact names) and networks (CIDR or
single addresses). A metadata address opens only when listed by itself (a /32
or /128), so that allowing a wide network such as ``169.254.0.0/16`` does not
hand out cloud credentials by accident. Pure: no I/O; the resolver applies it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from processors.images_errors import METADATA_REASON

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

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

# (reason, networks), most specific first; the first match names the reason.
_REFUSED: tuple[tuple[str, tuple[Network, ...]], ...] = tuple(
    (reason, tuple(ipaddress.ip_network(n) for n in networks))
    for reason, networks in (
        ("an unspecified address", ("0.0.0.0/8", "::/128")),
        ("a loopback address", ("127.0.0.0/8", "::1/128")),
        ("a link-local address", ("169.254.0.0/16", "fe80::/10")),
        ("a multicast address", ("224.0.0.0/4", "ff00::/8")),
        ("a shared (carrier-grade NAT) address", ("100.64.0.0/10",)),
        ("a private address", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
        ("a reserved address", ("240.0.0.0/4",)),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: Address) -> str | None:
    """Why ``address`` is refused by default (``"a private address"``), or None if public."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = classify(inner)
        return None if reason is None else f"{reason} (IPv4 {inner} inside IPv6)"
    if address in METADATA:
        return METADATA_REASON
    for reason, networks in _REFUSED:
        if any(address in network for network in networks):
            return reason
    if not address.is_global:
        return "a special-purpose address"
    return None


def normalize_host(host: str) -> str:
    """Host names compare lower-case, without the trailing dot of a fully qualified name."""
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The default refusals above, opened by ``allow_hosts`` and ``allow_networks``."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> AddressPolicy:
        """Build from ``MILLSTREAM_FETCH_ALLOW_HOSTS`` entries; ValueError names a bad one."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
                continue
            except ValueError:
                pass
            name = normalize_host(entry)
            if not _HOSTNAME.fullmatch(name):
                raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR network")
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def refusal(self, address: Address, host: str | None = None) -> str | None:
        """Why a connection to ``address`` (reached via name ``host``) is refused, or None."""
        address = _without_zone(address)
        reason = classify(address)
        if reason is None:
            return None
        # ::ffff:127.0.0.1 is the same socket as 127.0.0.1: the allow list sees both forms.
        inner = embedded_ipv4(address)
        forms = [address] if inner is None else [address, inner]
        if any(form in METADATA for form in forms):
            return None if self._lists_exactly(forms) else reason
        if host is not None and normalize_host(host) in self.allow_hosts:
            return None
        if any(form in network for form in forms for network in self.allow_networks):
            return None
        return reason

    def _lists_exactly(self, forms: list[Address]) -> bool:
        return any(n.num_addresses == 1 and a in n for a in forms for n in self.allow_networks)


def _without_zone(address: Address) -> Address:
    # fd00:ec2::254%eth0 is the same host as fd00:ec2::254, but does not compare equal to it.
    if isinstance(address, ipaddress.IPv4Address):
        return address
    return ipaddress.IPv6Address(int(address))


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address (IPv6 brackets and zone ids allowed), or None for a name."""
    text = text.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
