"""Images: fetch by URL (http, https, file), check, and decode to RGB pixels.

``ImageFetcher.fetch(url)`` returns a ``DecodedImage``, or raises one of the
errors drawn in ``processors.images.errors``: retryable for what may pass (5xx,
timeouts, connection trouble), permanent for what will not (4xx, not an image,
too large, refused address, ...), each message saying what to change.
``fetch_encoded(url)`` then ``decode(encoded)`` do the same in two steps, so a
caller can reserve memory for the header's size before a pixel is decoded
(processors.images.memory_budget). The pieces, each in its own module:

```
egress.py         AddressPolicy: which addresses http(s) may reach (pure; shared with webhooks, providers)
images_http.py    HttpFetcher: resolve-and-check, redirects, deadline, byte limit
images_files.py   read_file: file:// under MILLSTREAM_FILE_ROOTS only
images_decode.py  decode: magic-byte sniffing, size limits before decoding, RGB
images_limits.py  check_size: pixels, width, height, aspect; their errors
images_settings.py ImageSettings (standard library only; re-exported here)
```
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from processors.egress.policy import MAX_URL_CHARS, AddressPolicy
from processors.images.decode import DecodedImage, decode, header_size
from processors.images.errors import InvalidImageUrl, UnsupportedScheme
from processors.images.files import read_file
from processors.images.http import HttpFetcher
from processors.images.settings import ImageSettings

__all__ = ["DecodedImage", "EncodedImage", "ImageFetcher", "ImageSettings"]



@dataclass(frozen=True, slots=True, eq=False)
class EncodedImage:
    """Fetched bytes whose header passed the size limits; ``width`` x ``height`` is the upright size
    the header claims (what decoding will produce, checked again then)."""

    url: str
    data: bytes
    content_type: str | None
    width: int
    height: int


class ImageFetcher:
    """Fetch and decode images; use as ``async with`` (or call ``aclose``) to release connections.

    ``resolver`` replaces the system DNS lookup (tests); every address it returns
    still passes the address policy.
    """

    def __init__(self, settings: ImageSettings, *, resolver: AbstractResolver | None = None) -> None:
        self._settings, self._limits = settings, settings.size_limits()
        self._http = HttpFetcher(
            AddressPolicy.parse(settings.fetch_allow_hosts), timeout=settings.fetch_timeout,
            max_bytes=settings.max_image_bytes, max_redirects=settings.max_redirects, resolver=resolver,
        )

    async def fetch(self, url: str) -> DecodedImage:
        """The image at ``url`` as RGB pixels plus its format and size."""
        return await self.decode(await self.fetch_encoded(url))

    async def fetch_encoded(self, url: str) -> EncodedImage:
        """The bytes at ``url`` and the size their header claims, checked; nothing decoded yet."""
        data, content_type = await self.fetch_bytes(url)
        width, height = await asyncio.to_thread(
            header_size, data, limits=self._limits, url=url, content_type=content_type
        )
        return EncodedImage(url, data, content_type, width, height)

    async def decode(self, encoded: EncodedImage) -> DecodedImage:
        """``encoded`` as RGB pixels (the size limits checked once more)."""
        return await asyncio.to_thread(self.decode_sync, encoded)

    def decode_sync(self, encoded: EncodedImage) -> DecodedImage:
        """``decode``, blocking (CPU-bound): for a caller that runs it in its own thread."""
        return decode(encoded.data, limits=self._limits, url=encoded.url, content_type=encoded.content_type)

    async def fetch_bytes(self, url: str) -> tuple[bytes, str | None]:
        """The raw bytes at ``url`` (within the byte limit) and the Content-Type it was served with."""
        url, scheme = _split(url)
        if scheme in ("http", "https"):
            fetched = await self._http.get(url)
            return fetched.body, fetched.content_type
        if scheme == "file":
            roots, limit = self._settings.file_roots, self._settings.max_image_bytes
            return await asyncio.to_thread(read_file, url, roots, limit), None
        raise UnsupportedScheme(url, scheme)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ImageFetcher:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _split(url: object) -> tuple[str, str]:
    """``url`` without surrounding blanks, and its scheme in lower case."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidImageUrl(str(url), "it is empty or not a string")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidImageUrl(url, f"it is longer than {MAX_URL_CHARS} characters")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as error:
        raise InvalidImageUrl(url, str(error)) from None
    if not scheme:
        raise InvalidImageUrl(url, "it has no scheme; use http://, https:// or file://")
    return url, scheme
