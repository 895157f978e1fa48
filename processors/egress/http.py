"""The aiohttp side of the egress policy: every outbound request of millstream goes through here.

``EgressClient.request(method, url)`` checks the URL as aiohttp will use it
(yarl parses it; the host it connects to is ``raw_host``, IDNA applied), then
sends it with ``allow_redirects=False``: a caller that follows a redirect
calls ``request`` again, so every hop is checked. Host names go through
``CheckedResolver``: it resolves once and hands the connector only the
addresses the policy allows, so the address checked is the address connected
to (no second lookup for DNS rebinding to exploit). No proxies from the
environment (they would connect for us, unchecked) and no cookie jar (one
user's URL must not see cookies another user's URL earned).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client import _RequestContextManager
from yarl import URL

from processors.egress.policy import MAX_URL_CHARS, AddressPolicy, EgressRefused, parse_literal
from streams.text.redact import redact


class RefusedAddress(EgressRefused):
    """Raised inside the connector; not an OSError, so aiohttp lets it through unwrapped."""


class CheckedResolver(AbstractResolver):
    """Resolve with ``inner``; keep only the addresses ``policy`` allows for that host."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver) -> None:
        self._policy, self._inner = policy, inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        refused: list[EgressRefused] = []
        allowed = []
        for result in results:
            reason = self._judge(result["host"], host)
            if reason is None:
                allowed.append(result)
            else:
                refused.append(reason)
        if not allowed:
            first = refused[0] if refused else EgressRefused("its host resolved to no address", kind="host")
            raise RefusedAddress(first.problem, kind=first.kind, rule=first.rule, metadata=first.metadata)
        return allowed

    def _judge(self, address: str, host: str) -> EgressRefused | None:
        # The messages never quote what the resolver said: that is internal information.
        odd = EgressRefused("its host resolved to something that is not an IP address", kind="host")
        try:
            literal = parse_literal(address)
        except EgressRefused:
            return odd
        return odd if literal is None else self._policy.refusal(literal, host)

    async def close(self) -> None:
        await self._inner.close()


def connect_host(url: URL) -> str:
    """The host aiohttp's TCPConnector resolves or connects to for ``url`` (as _create_direct_connection)."""
    host = url.raw_host or ""
    return host.rstrip(".") + "." if host.endswith("..") else host


def checked_url(url: str | URL, policy: AddressPolicy) -> URL:
    """``url`` parsed as aiohttp will parse it, its host judged; EgressRefused otherwise."""
    if isinstance(url, str):
        if len(url) > MAX_URL_CHARS:
            raise EgressRefused(f"it is longer than {MAX_URL_CHARS} characters", kind="url")
        try:
            url = URL(url)
        except (ValueError, TypeError) as error:  # UnicodeError is a ValueError
            raise EgressRefused(f"it cannot be parsed ({_short(error)})", kind="url") from None
    if url.scheme not in ("http", "https"):
        raise EgressRefused(f"its scheme is {url.scheme!r}, not http or https", kind="scheme")
    if not url.raw_host:
        raise EgressRefused("it names no host", kind="url")
    policy.check_host(connect_host(url))
    return url


class EgressClient:
    """One aiohttp session whose every request passes the egress policy; made on first use (needs a loop).

    ``resolver`` replaces the system DNS lookup (tests); every address it returns
    still passes the policy. ``socket_factory`` lets a test see the address each
    connection is made to.
    """

    def __init__(self, policy: AddressPolicy, *, resolver: AbstractResolver | None = None,
                 headers: Mapping[str, str] | None = None,
                 socket_factory: Callable[[Any], socket.socket] | None = None) -> None:
        self.policy, self._resolver, self._headers = policy, resolver, dict(headers or {})
        self._socket_factory = socket_factory
        self._session: aiohttp.ClientSession | None = None

    def check(self, url: str | URL) -> URL:
        return checked_url(url, self.policy)

    def request(self, method: str, url: str | URL, **options: Any) -> _RequestContextManager:
        """``session.request`` on the checked URL, never following redirects; raises EgressRefused."""
        target = self.check(url)
        return self._open().request(method, target, allow_redirects=False, **options)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            inner = self._resolver or aiohttp.ThreadedResolver()
            # socket_factory exists from aiohttp 3.12; pyproject allows 3.10, so pass it only when asked.
            extra: dict[str, Any] = {}
            if self._socket_factory is not None:
                extra["socket_factory"] = self._socket_factory
            connector = aiohttp.TCPConnector(resolver=CheckedResolver(self.policy, inner), **extra)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _short(error: BaseException) -> str:
    # yarl's messages may quote the URL, user info included.
    text = redact(str(error) or type(error).__name__)
    return text if len(text) <= 200 else text[:200] + "..."
