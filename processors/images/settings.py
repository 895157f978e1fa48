"""ImageSettings: the ``images`` settings section (``MILLSTREAM_FILE_ROOTS``, ``MILLSTREAM_MAX_IMAGE_*``).

Standard library, ``streams.*`` and ``processors.egress.policy`` only (itself
standard library only), so that ``streams.settings.registered_sections()``
loads this section in an install without the image extras (no aiohttp, numpy
or Pillow). ``processors.images.fetch`` re-exports it.

The size limits are read from an image's header before it is decoded
(processors.images.decode); why each default is what it is: docs/MEMORY.md.
The memory budgets bound what one worker's tasks hold together
(processors.images.memory_budget; docs/decisions/0020-per-worker-memory-budget.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from processors.egress.policy import AddressPolicy
from streams.errors import ConfigError
from streams.settings import variable

__all__ = ["MAX_INFERENCE_BYTES", "ImageSettings", "SizeLimits"]

GIB = 1024 * 1024 * 1024
MAX_INFERENCE_BYTES = 128 * 1024 * 1024  # the worst image the default limits admit needs 66 MiB
_MAX_OCR_THREADS = 64

_MAX_REDIRECTS_CEILING = 20
_AT_LEAST_ONE = ("max_image_bytes", "max_image_pixels", "max_image_width", "max_image_height",
                 "max_inference_bytes")


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """The size limits an image must meet before it is decoded; see ImageSettings."""

    max_pixels: int = 40_000_000
    max_width: int = 10_000
    max_height: int = 30_000
    max_aspect: float = 2000.0


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """``MILLSTREAM_FILE_ROOTS``, ``MILLSTREAM_FETCH_ALLOW_HOSTS``, ... (section ``images``)."""

    file_roots: tuple[str, ...] = ()  # directories file:// URLs may read from; empty: file:// off
    fetch_allow_hosts: tuple[str, ...] = ()  # host names and CIDR networks http(s) may reach anyway
    fetch_timeout: float = 20.0  # seconds for a whole fetch, redirects and body included
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # product detail pages are tall: 790 x 20000 is 15.8 M
    max_image_width: int = 10_000  # an 8K banner is 7680 wide
    max_image_height: int = 30_000  # 1.5 x the tallest seed page (790 x 20000)
    max_image_aspect: float = 2000.0  # long side / short side; 1 x 1280 and 790 x 1 strips still pass
    max_inference_bytes: int = MAX_INFERENCE_BYTES  # tiles + masks one image sends to Triton
    max_redirects: int = 3
    # Bytes the tasks of one worker may hold at once (processors.images.memory_budget); 0: unbounded.
    operate_memory_budget: int = 4 * GIB  # 3 worst-case images (1194 MiB each), 7 seed pages (527 MiB)
    ocr_memory_budget: int = 2 * GIB  # 1 worst-case OCR (1.2 GiB reserved) or 2 seed pages
    # OCRs at once per worker: OCR worker processes (a KillablePool; named when they were threads),
    # and so the ocr stage's concurrency.
    ocr_threads: int = 1
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
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ConfigError(variable(name), "must be >= 1")
        if not (self.max_image_aspect >= 1 and math.isfinite(self.max_image_aspect)):
            raise ConfigError(variable("max_image_aspect"), "must be a ratio >= 1 (long side / short side)")
        for name in ("operate_memory_budget", "ocr_memory_budget"):
            if getattr(self, name) < 0:
                raise ConfigError(variable(name), "must be a number of bytes >= 0 (0: unbounded)")
        if not 1 <= self.ocr_threads <= _MAX_OCR_THREADS:
            raise ConfigError(variable("ocr_threads"), f"must be between 1 and {_MAX_OCR_THREADS}")
        if not 0 <= self.max_redirects <= _MAX_REDIRECTS_CEILING:
            raise ConfigError(variable("max_redirects"), f"must be between 0 and {_MAX_REDIRECTS_CEILING}")
        if not self.store_dir:
            raise ConfigError(variable("store_dir"), "must name a directory")
        if self.public_url and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ConfigError(variable("public_url"), f"{self.public_url!r} must start with http:// or https://")

    def size_limits(self) -> SizeLimits:
        """The limits checked from an image's header."""
        return SizeLimits(self.max_image_pixels, self.max_image_width, self.max_image_height,
                          self.max_image_aspect)
