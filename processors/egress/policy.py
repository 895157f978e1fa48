"""The one egress policy: which hosts and addresses millstream's outbound HTTP may reach.

Image fetches, webhooks and translation providers all pass it (the aiohttp
side is processors.egress.http). Standard library only: settings validation
imports it without aiohttp installed.

A URL's host is judged in the form the HTTP client connects to: yarl's
``raw_host`` (IDNA applied, so U+3002 and full-width digits are already ASCII).

```
host form                                 verdict
----------------------------------------  ---------------------------------------------
IPv6 literal (has ':')                    the address, judged below
canonical dotted quad (93.184.216.34)     the address, judged below
any other name ending in a number         refused: a rare IP address format (RFC 3986
(127.1, 2130706433, 0177.0.0.1,           section 7.4) -- resolvers read these as
 0x7f.0.0.1, 0x7f000001, 127.0.0.1.)      addresses, differently across libraries
not a letters-digits-hyphens name         refused: not a valid host name
a name                                    resolved; every address judged below
```
An address is judged by ``processors.egress.registry``: a cloud metadata
address, or an entry of the IANA special-purpose registries that is not
globally reachable, is refused; IPv6 forms that carry an IPv4 address are
refused when the IPv4 inside is. A refusal names the rule (``loopback (RFC
1122)``), never the address a name resolved to.

``MILLSTREAM_FETCH_ALLOW_HOSTS`` opens hosts (exact names) and networks (CIDR
or single addresses). A metadata address opens only when listed by itself (a
/32 or /128), so that allowing a wide network such as ``169.254.0.0/16`` does
not hand out cloud credentials by accident.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from processors.egress.registry import (
    GLOBAL_UNICAST,
    METADATA,
    METADATA_RULE,
    UNASSIGNED,
    Address,
    Network,
    inner_ipv4,
    rule_for,
)

MAX_URL_CHARS = 8192
_SHOWN_CHARS = 300
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?", re.IGNORECASE | re.ASCII)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
RARE_FORM = "a rare IP address format (RFC 3986 section 7.4)"


class EgressRefused(ValueError):
    """A URL the policy will not connect to. ``kind``: url, scheme, host or address.

    ``rule`` (for kind address) names the rule; ``metadata`` says a cloud metadata
    address was hit (only an exact allow-list entry opens it).
    """

    def __init__(self, problem: str, *, kind: str, rule: str | None = None, metadata: bool = False) -> None:
        super().__init__(problem)
        self.problem, self.kind, self.rule, self.metadata = problem, kind, rule, metadata


def display_url(url: str) -> str:
    """``url`` fit for a message: no ``user:password@``, not unbounded in length."""
    try:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        url = urlunsplit(parts)
    except ValueError:
        url = re.sub(r"//[^/@]*@", "//", url)
    return url if len(url) <= _SHOWN_CHARS else url[:_SHOWN_CHARS] + "..."


def classify(address: Address) -> str | None:
    """The rule that refuses ``address`` by default (``loopback (RFC 1122)``), or None if public."""
    address = _without_zone(address)
    if address in METADATA:
        return METADATA_RULE
    rule = rule_for(address)
    if rule is None:
        if address.version == 6 and address not in GLOBAL_UNICAST:
            return f"{UNASSIGNED[0]} ({UNASSIGNED[1]})"
        return None
    if rule.embeds is not None and isinstance(address, ipaddress.IPv6Address):
        for inner in inner_ipv4(address, rule.embeds):
            reason = classify(inner)
            if reason is not None:
                return f"{reason} inside {rule.label}"
    return None if rule.reachable else rule.label


def embedded_ipv4(address: Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo, ...); () if none."""
    if isinstance(address, ipaddress.IPv4Address):
        return ()
    rule = rule_for(_without_zone(address))
    return () if rule is None or rule.embeds is None else inner_ipv4(address, rule.embeds)


def ends_in_number(host: str) -> bool:
    """Whether ``host``'s last label is a number (decimal or 0x hex): the WHATWG URL test for IPv4."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    return bool(_NUMBER.fullmatch(labels[-1]))


def parse_literal(host: str) -> Address | None:
    """``host`` (a raw host, brackets optional) as an IP address when it is one; None for a name.

    Raises EgressRefused for an IPv6 literal that does not parse and for a
    numeric host that is not a canonical dotted quad (RFC 3986 section 7.4).
    """
    host = host.strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.replace("%25", "%", 1))
        except ValueError:
            raise EgressRefused(f"its host {host[:80]!r} is not a valid IPv6 address", kind="host") from None
    if not ends_in_number(host):
        return None
    if not _DOTTED_QUAD.fullmatch(host):
        raise EgressRefused(f"its host {host[:80]!r} is {RARE_FORM}; write the address as four "
                            "decimal numbers (a.b.c.d) or use a name", kind="host")
    return ipaddress.IPv4Address(host)


def _without_zone(address: Address) -> Address:
    # fd00:ec2::254%eth0 is the same host as fd00:ec2::254, but does not compare equal to it.
    if isinstance(address, ipaddress.IPv4Address):
        return address
    return ipaddress.IPv6Address(int(address))


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
            if not _HOSTNAME.fullmatch(name) or name.endswith("."):
                raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR network")
            if ends_in_number(name):
                raise ValueError(f"{entry!r} is {RARE_FORM}; list the address as a.b.c.d")
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def opening(self, host: str) -> AddressPolicy:
        """This policy, with ``host`` (a name or a literal address) allowed as well."""
        literal = parse_literal(host)
        if literal is None:
            return AddressPolicy(self.allow_hosts | {normalize_host(host)}, self.allow_networks)
        single = ipaddress.ip_network(_without_zone(literal))
        return AddressPolicy(self.allow_hosts, (*self.allow_networks, single))

    def refusal(self, address: Address, host: str | None = None) -> EgressRefused | None:
        """Why a connection to ``address`` (reached via name ``host``) is refused, or None."""
        address = _without_zone(address)
        reason = classify(address)
        if reason is None:
            return None
        # ::ffff:127.0.0.1 is the same socket as 127.0.0.1: the allow list sees both forms.
        forms = [address, *embedded_ipv4(address)]
        if any(form in METADATA for form in forms):
            if self._lists_exactly(forms):
                return None
            return _refused(reason, metadata=True)
        if host is not None and normalize_host(host) in self.allow_hosts:
            return None
        if any(form in network for form in forms for network in self.allow_networks):
            return None
        return _refused(reason)

    def check_host(self, raw_host: str) -> Address | None:
        """Judge the host a client will connect to: its literal address (allowed), or None for a name.

        Raises EgressRefused (see the module docstring). A name still has to
        pass ``refusal`` for every address it resolves to.
        """
        if not raw_host:
            raise EgressRefused("it names no host", kind="url")
        literal = parse_literal(raw_host)
        if literal is None:
            if not _HOSTNAME.fullmatch(raw_host):
                raise EgressRefused(f"its host {raw_host[:80]!r} is not a valid host name", kind="host")
            return None
        refused = self.refusal(literal)
        if refused is not None:
            raise refused
        return literal

    def _lists_exactly(self, forms: list[Address]) -> bool:
        return any(n.num_addresses == 1 and a in n for a in forms for n in self.allow_networks)


def _refused(reason: str, *, metadata: bool = False) -> EgressRefused:
    return EgressRefused(f"its address is {reason}", kind="address", rule=reason, metadata=metadata)
