"""Property: the address aiohttp actually connects to is always one the egress policy judged and allowed.

Random hosts (addresses in many spellings: Unicode full stops, full-width
digits, dword, hex, octal, short forms, IPv6 with IPv4 inside; and names a
hostile DNS answers with random addresses) go through a real ``EgressClient``.
Its connector's ``socket_factory`` records each address a connection is made
to and refuses it, so nothing leaves the machine. The verdict computed on
yarl's normalised host must match what was connected to, exactly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from hypothesis import event, given, settings
from hypothesis import strategies as st
from yarl import URL

from processors.egress.http import EgressClient, connect_host
from processors.egress.policy import AddressPolicy, EgressRefused, classify
from processors.egress.registry import IPV4, IPV6, METADATA

POLICY = AddressPolicy.parse(("10.1.0.0/16", "allowed.example"))
NAMES = ("a.example", "b.example", "allowed.example")
STOPS = (".", "\u3002", "\uff0e", "\uff61")
WIDE = str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostileResolver(AbstractResolver):
    """A DNS that answers the names of ``table`` with whatever addresses it holds."""

    def __init__(self, table: dict[str, list[Address]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        if host.rstrip(".") not in self.table:
            raise OSError(socket.EAI_NONAME, f"{host} is not in the test's DNS")
        return [ResolveResult(hostname=host, host=str(a), port=port, proto=0, flags=0,
                              family=socket.AF_INET if a.version == 4 else socket.AF_INET6)
                for a in self.table[host.rstrip(".")]]

    async def close(self) -> None:
        return None


networks = [ipaddress.ip_network(row[0]) for row in (*IPV4, *IPV6)] + [ipaddress.ip_network("10.1.0.0/16")]
addresses = st.one_of(
    st.ip_addresses(),
    st.sampled_from(sorted(METADATA, key=str)),
    st.sampled_from(networks).flatmap(lambda network: st.ip_addresses(network=network)),
)


@st.composite
def ipv4_spelling(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    octets = [int(part) for part in str(address).split(".")]
    form = draw(st.sampled_from(["dotted", "dword", "hex", "octal", "short", "trailing"]))
    if form == "dword":
        text = str(int(address))
    elif form == "hex":
        text = hex(int(address))
    elif form == "octal":
        text = ".".join(f"0{value:o}" for value in octets)
    elif form == "short":
        text = f"{octets[0]}.{(octets[1] << 16) | (octets[2] << 8) | octets[3]}"
    else:
        text = ".".join(map(str, octets)) + ("." if form == "trailing" else "")
    text = "".join(draw(st.sampled_from(STOPS)) if char == "." else char for char in text)
    return text.translate(WIDE) if draw(st.booleans()) else text


@st.composite
def hosts(draw: st.DrawFn) -> tuple[str, dict[str, list[Address]]]:
    table = {name: draw(st.lists(addresses, min_size=1, max_size=3)) for name in NAMES}
    kind = draw(st.sampled_from(["ipv4", "ipv6", "name"]))
    if kind == "name":
        name = draw(st.sampled_from(NAMES))
        return "".join(draw(st.sampled_from(STOPS)) if c == "." else c for c in name).upper(), table
    address = draw(addresses)
    if isinstance(address, ipaddress.IPv4Address):
        return (draw(ipv4_spelling(address)) if kind == "ipv4" else f"[::ffff:{address}]"), table
    return f"[{address.exploded if draw(st.booleans()) else address}]", table


async def attempt(url: str, table: dict[str, list[Address]]) -> tuple[BaseException | None, list[Address]]:
    connected: list[Address] = []

    def record_and_refuse(addr_info: tuple) -> socket.socket:  # type: ignore[type-arg]
        connected.append(ipaddress.ip_address(addr_info[4][0].split("%")[0]))
        raise OSError(101, "the test lets no connection out")

    client = EgressClient(POLICY, resolver=HostileResolver(table), socket_factory=record_and_refuse)
    try:
        async with client.request("GET", url):
            return None, connected
    except Exception as error:  # noqa: BLE001  (the outcome is what the property looks at)
        return error, connected
    finally:
        await client.aclose()


def expected(url: str, table: dict[str, list[Address]]) -> tuple[str, list[Address]]:
    """What the policy, judging yarl's normalised host, says should be connected to."""
    host = connect_host(URL(url))
    if is_ip_address(host):
        try:
            address = ipaddress.ip_address(host.replace("%25", "%"))
        except ValueError:
            return "refused", []  # not a canonical literal: a rare form
        return ("connect", [address]) if POLICY.refusal(address) is None else ("refused", [])
    allowed = [a for a in table.get(host.rstrip("."), []) if POLICY.refusal(a, host) is None]
    if host.rstrip(".") not in table:
        return "no such name" if not _rare(host) else "refused", []
    return ("connect", allowed) if allowed else ("refused", [])


def _rare(host: str) -> bool:
    try:
        POLICY.check_host(host)
    except EgressRefused:
        return True
    return False


@settings(max_examples=400, deadline=None)
@given(hosts())
def test_the_connector_reaches_only_addresses_the_policy_allowed_for_yarls_host(
    drawn: tuple[str, dict[str, list[Address]]],
) -> None:
    host, table = drawn
    url = f"http://{host}:9/x"
    error, connected = asyncio.run(attempt(url, table))
    verdict, wanted = expected(url, table)
    event(f"{verdict}: {type(error).__name__}")
    assert set(connected) <= set(wanted), (url, connected, wanted)
    if verdict == "connect":
        assert connected and set(connected) == set(wanted), (url, connected, wanted)
        assert isinstance(error, OSError), (url, error)
    else:
        assert connected == [], (url, connected)
        if verdict == "refused":
            assert isinstance(error, EgressRefused), (url, error)
            if error.kind == "address" and is_ip_address(connect_host(URL(url))):
                literal = ipaddress.ip_address(connect_host(URL(url)).replace("%25", "%"))
                assert error.rule == classify(literal), (url, error.rule)
