"""Fetch an image over http(s) without becoming a proxy into the private network.

Defences, in the order a fetch meets them:

1. Each hop's URL passes the egress policy (processors.egress.http): http(s)
   only, the host judged as aiohttp will connect to it (IDNA applied, rare
   numeric forms refused), literal addresses checked at once.
2. Host names go through ``CheckedResolver``: the address checked is the
   address connected to.
3. Redirects are followed by hand, at most ``max_redirects``, each hop checked
   again; a redirect to file:// or another scheme is refused.
4. One deadline covers the whole fetch, redirects and body included (a server
   that trickles bytes cannot hold a worker), and the body stops at
   ``max_bytes`` whatever Content-Length said.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from processors.egress.http import EgressClient
from processors.egress.policy import AddressPolicy, EgressRefused
from processors.images.errors import (
    AddressRefused,
    ImageHttpError,
    ImageTooLarge,
    ImageUnreachable,
    InvalidImageUrl,
    TooManyRedirects,
    UnsupportedScheme,
    display_url,
)

_REDIRECTS = {301, 302, 303, 307, 308}
_TRANSIENT_4XX = {408, 425, 429}  # timeout, too early, rate limited: the same request may work later
_CHUNK = 64 * 1024
_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity", "User-Agent": "millstream-images/1"}


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str | None
    url: str  # after redirects


class HttpFetcher:
    """GET one image; owns an aiohttp session, made on first use (it needs a running loop)."""

    def __init__(self, policy: AddressPolicy, *, timeout: float, max_bytes: int, max_redirects: int,
                 resolver: AbstractResolver | None = None) -> None:
        self._timeout, self._max_bytes, self._max_redirects = timeout, max_bytes, max_redirects
        self._client = EgressClient(policy, resolver=resolver, headers=_HEADERS)

    async def get(self, url: str) -> Fetched:
        """The body of ``url``; raises the errors of ``processors.images.errors``."""
        hop = url
        try:
            async with asyncio.timeout(self._timeout):
                for _ in range(self._max_redirects + 1):
                    fetched, hop = await self._hop(hop)
                    if fetched is not None:
                        return fetched
                raise TooManyRedirects(url, self._max_redirects)
        except EgressRefused as refused:
            raise _image_error(hop, refused) from None
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
        async with self._client.request("GET", url) as response:
            if response.status in _REDIRECTS:
                return None, _location(response, url)
            _check_status(response, url)
            body = await self._read(response, url)
            return Fetched(body, response.content_type, url), url

    async def _read(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        if response.content_length is not None and response.content_length > self._max_bytes:
            raise ImageTooLarge(url, self._max_bytes)
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                raise ImageTooLarge(url, self._max_bytes)
        return bytes(body)

    async def aclose(self) -> None:
        await self._client.aclose()


def _image_error(url: str, refused: EgressRefused) -> Exception:
    if refused.kind == "address":
        return AddressRefused(url, refused.rule or refused.problem, refused.metadata)
    if refused.kind == "scheme":
        return UnsupportedScheme(url, URL(url).scheme)
    return InvalidImageUrl(url, refused.problem)


def _location(response: aiohttp.ClientResponse, url: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise ImageHttpError(url, response.status, f"{response.reason} without a Location header")
    try:
        return str(response.url.join(URL(location)))
    except ValueError as error:
        raise InvalidImageUrl(location, f"redirect target of {display_url(url)}: {error}") from None


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
