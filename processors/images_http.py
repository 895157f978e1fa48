"""Fetch an image over http(s) without becoming a proxy into the private network.

Defences, in the order a fetch meets them:

1. Each hop's URL must be http(s) with a host; a literal IP host is checked
   against the AddressPolicy here (aiohttp connects to literals without asking
   a resolver).
2. Host names go through ``CheckedResolver``: it resolves and hands the
   connector only the addresses the policy allows, so the address checked is
   the address connected to (no second lookup for DNS rebinding to exploit).
   Spellings such as ``0x7f.1`` resolve to 127.0.0.1 and are caught there too.
3. Redirects are followed by hand, at most ``max_redirects``, each hop checked
   again; a redirect to file:// or another scheme is refused.
4. One deadline covers the whole fetch, redirects and body included (a server
   that trickles bytes cannot hold a worker), and the body stops at
   ``max_bytes`` whatever Content-Length said.

No proxies from the environment (they would connect for us, unchecked) and no
cookie jar (one user's URL must not see cookies another user's URL earned).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from processors.images_errors import (
    AddressRefused,
    ImageHttpError,
    ImageTooLarge,
    ImageUnreachable,
    InvalidImageUrl,
    TooManyRedirects,
    UnsupportedScheme,
)
from processors.images_ssrf import AddressPolicy, parse_address

_REDIRECTS = {301, 302, 303, 307, 308}
_TRANSIENT_4XX = {408, 425, 429}  # timeout, too early, rate limited: the same request may work later
_CHUNK = 64 * 1024
_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity", "User-Agent": "millstream-images/1"}


class RefusedAddress(Exception):
    """Raised inside the connector; not an OSError, so aiohttp lets it through unwrapped."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address} is {reason}")
        self.address, self.reason = address, reason


class CheckedResolver(AbstractResolver):
    """Resolve with ``inner``; keep only the addresses ``policy`` allows for that host."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver) -> None:
        self._policy, self._inner = policy, inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        refused: list[RefusedAddress] = []
        allowed = []
        for result in results:
            address = parse_address(result["host"])
            reason = "not an IP address" if address is None else self._policy.refusal(address, host)
            if reason is None:
                allowed.append(result)
            else:
                refused.append(RefusedAddress(result["host"], reason))
        if refused and not allowed:
            raise refused[0]
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str | None
    url: str  # after redirects


class HttpFetcher:
    """GET one image; owns an aiohttp session, made on first use (it needs a running loop)."""

    def __init__(self, policy: AddressPolicy, *, timeout: float, max_bytes: int, max_redirects: int,
                 resolver: AbstractResolver | None = None) -> None:
        self._policy, self._timeout, self._max_bytes = policy, timeout, max_bytes
        self._max_redirects, self._resolver = max_redirects, resolver
        self._session: aiohttp.ClientSession | None = None

    async def get(self, url: str) -> Fetched:
        """The body of ``url``; raises the errors of ``processors.images_errors``."""
        hop = url
        try:
            async with asyncio.timeout(self._timeout):
                for _ in range(self._max_redirects + 1):
                    fetched, hop = await self._hop(hop)
                    if fetched is not None:
                        return fetched
                raise TooManyRedirects(url, self._max_redirects)
        except RefusedAddress as refused:
            raise AddressRefused(hop, refused.address, refused.reason) from None
        except TimeoutError:
            raise ImageUnreachable(hop, f"no complete answer within {self._timeout:g} s") from None
        except aiohttp.InvalidURL as error:
            raise InvalidImageUrl(hop, str(error) or "aiohttp cannot use it") from None
        except aiohttp.ClientPayloadError:
            raise ImageUnreachable(hop, "the connection broke before the whole image arrived") from None
        except (aiohttp.ClientError, OSError) as error:
            raise ImageUnreachable(hop, _describe(error)) from None

    async def _hop(self, url: str) -> tuple[Fetched | None, str]:
        """Fetch one URL: the result, or None and the URL a redirect points to."""
        target = self._checked(url)
        session = self._open_session()
        async with session.get(target, allow_redirects=False) as response:
            if response.status in _REDIRECTS:
                return None, _location(response, url)
            _check_status(response, url)
            body = await self._read(response, url)
            return Fetched(body, response.content_type, url), url

    def _checked(self, url: str) -> URL:
        try:
            target = URL(url, encoded=False)
        except (ValueError, TypeError) as error:
            raise InvalidImageUrl(url, str(error)) from None
        if target.scheme not in ("http", "https"):
            raise UnsupportedScheme(url, target.scheme)
        if not target.raw_host:
            raise InvalidImageUrl(url, "it names no host")
        literal = parse_address(target.raw_host)
        reason = None if literal is None else self._policy.refusal(literal)
        if reason is not None:
            raise AddressRefused(url, str(literal), reason)
        return target

    async def _read(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        if response.content_length is not None and response.content_length > self._max_bytes:
            raise ImageTooLarge(url, self._max_bytes)
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                raise ImageTooLarge(url, self._max_bytes)
        return bytes(body)

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            inner = self._resolver or aiohttp.ThreadedResolver()
            connector = aiohttp.TCPConnector(resolver=CheckedResolver(self._policy, inner))
            self._session = aiohttp.ClientSession(
                connector=connector, headers=_HEADERS, trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _location(response: aiohttp.ClientResponse, url: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise ImageHttpError(url, response.status, f"{response.reason} without a Location header")
    try:
        return str(response.url.join(URL(location)))
    except ValueError as error:
        raise InvalidImageUrl(location, f"redirect target of {url}: {error}") from None


def _check_status(response: aiohttp.ClientResponse, url: str) -> None:
    status, reason = response.status, response.reason or ""
    if 200 <= status < 300:
        return
    if status >= 500 or status in _TRANSIENT_4XX:
        raise ImageUnreachable(url, f"the server answered {status} {reason}", status)
    raise ImageHttpError(url, status, reason)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if type(error).__name__ not in text else text
