"""Images: fetch by URL (http, https, file), check, and decode to RGB pixels.

``ImageFetcher.fetch(url)`` returns a ``DecodedImage``, or raises one of the
errors drawn in ``processors.images_errors``: retryable for what may pass (5xx,
timeouts, connection trouble), permanent for what will not (4xx, not an image,
too large, refused address, ...), each message saying what to change. The
pieces, each in its own module:

```
images_ssrf.py    AddressPolicy: which addresses http(s) may reach (pure)
images_http.py    HttpFetcher: resolve-and-check, redirects, deadline, byte limit
images_files.py   read_file: file:// under MILLSTREAM_FILE_ROOTS only
images_decode.py  decode: magic-byte sniffing, pixel limit before decoding, RGB
```
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from processors.images_decode import DecodedImage, decode
from processors.images_errors import InvalidImageUrl, UnsupportedScheme
from processors.images_files import read_file
from processors.images_http import HttpFetcher
from processors.images_ssrf import AddressPolicy
from streams.errors import ConfigError
from streams.settings import variable

__all__ = ["DecodedImage", "ImageFetcher", "ImageSettings"]

_MAX_URL_CHARS = 8192
_MAX_REDIRECTS_CEILING = 20


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """``MILLSTREAM_FILE_ROOTS``, ``MILLSTREAM_FETCH_ALLOW_HOSTS``, ... (section ``images``)."""

    file_roots: tuple[str, ...] = ()  # directories file:// URLs may read from; empty: file:// off
    fetch_allow_hosts: tuple[str, ...] = ()  # host names and CIDR networks http(s) may reach anyway
    fetch_timeout: float = 20.0  # seconds for a whole fetch, redirects and body included
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # product detail pages are tall: 790 x 20000 is 15.8 M
    max_redirects: int = 3
    store_dir: str = "var/images"  # where LocalStore writes result images
    public_url: str = ""  # base URL result images are served under; empty: `millstream up` fills it

    def __post_init__(self) -> None:
        for root in self.file_roots:
            if not root.startswith("/"):
                raise ConfigError(variable("file_roots"), f"{root!r} is not an absolute path")
            if root.strip("/") == "":
                raise ConfigError(variable("file_roots"), "'/' would open every file; list image directories")
        try:
            AddressPolicy.parse(self.fetch_allow_hosts)
        except ValueError as error:
            raise ConfigError(variable("fetch_allow_hosts"), str(error)) from None
        if not (self.fetch_timeout > 0 and math.isfinite(self.fetch_timeout)):
            raise ConfigError(variable("fetch_timeout"), "must be a number of seconds > 0")
        for name in ("max_image_bytes", "max_image_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(variable(name), "must be >= 1")
        if not 0 <= self.max_redirects <= _MAX_REDIRECTS_CEILING:
            raise ConfigError(variable("max_redirects"), f"must be between 0 and {_MAX_REDIRECTS_CEILING}")
        if not self.store_dir:
            raise ConfigError(variable("store_dir"), "must name a directory")
        if self.public_url and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ConfigError(variable("public_url"), f"{self.public_url!r} must start with http:// or https://")


class ImageFetcher:
    """Fetch and decode images; use as ``async with`` (or call ``aclose``) to release connections.

    ``resolver`` replaces the system DNS lookup (tests); every address it returns
    still passes the address policy.
    """

    def __init__(self, settings: ImageSettings, *, resolver: AbstractResolver | None = None) -> None:
        self._settings = settings
        self._http = HttpFetcher(
            AddressPolicy.parse(settings.fetch_allow_hosts), timeout=settings.fetch_timeout,
            max_bytes=settings.max_image_bytes, max_redirects=settings.max_redirects, resolver=resolver,
        )

    async def fetch(self, url: str) -> DecodedImage:
        """The image at ``url`` as RGB pixels plus its format and size."""
        data, content_type = await self.fetch_bytes(url)
        return await asyncio.to_thread(
            decode, data, max_pixels=self._settings.max_image_pixels, url=url, content_type=content_type
        )

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
    if len(url) > _MAX_URL_CHARS:
        raise InvalidImageUrl(url, f"it is longer than {_MAX_URL_CHARS} characters")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as error:
        raise InvalidImageUrl(url, str(error)) from None
    if not scheme:
        raise InvalidImageUrl(url, "it has no scheme; use http://, https:// or file://")
    return url, scheme
