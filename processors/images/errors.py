"""What can go wrong fetching an image, split by what the caller should do.

```
RetryableError
  ImageUnreachable       HTTP 5xx, 408, 429, timeout, connection refused or cut short
PermanentError
  ImageHttpError         any other HTTP 4xx (404, 410, 403, ...), a redirect without Location
  ImageFileMissing       file:// names no regular file
  BadImage               the bytes arrived but are unusable
    ImageTooLarge          over MILLSTREAM_MAX_IMAGE_BYTES
    NotAnImage             not JPEG, PNG, WebP, GIF or BMP by its magic bytes
    TruncatedImage         cut off or corrupt inside
    ImageTooManyPixels     over MILLSTREAM_MAX_IMAGE_PIXELS (decompression bombs land here)
  InvalidPayload
    ImageUrlRefused      the URL itself is not acceptable
      InvalidImageUrl, UnsupportedScheme, AddressRefused, TooManyRedirects,
      FileUrlsDisabled, FileOutsideRoots, FileHardLinked
```
Messages name the URL with any ``user:password@`` removed, say what was wrong
and what to change. A refused address is named by its rule, never by the
address a name resolved to (that would map the internal network for the
sender). Data rides along as attributes.
"""

from __future__ import annotations

from processors.egress.policy import (
    display_url as display_url,  # re-exported: image modules import it from here
)
from streams.errors import InvalidPayload, PermanentError, RetryableError

FORMATS = "JPEG, PNG, WebP, GIF or BMP"


class ImageUnreachable(RetryableError):
    def __init__(self, url: str, problem: str, status: int | None = None) -> None:
        self.url, self.problem, self.status = display_url(url), problem, status
        super().__init__(f"could not fetch image {self.url}: {problem}")


class ImageHttpError(PermanentError):
    def __init__(self, url: str, status: int, reason: str) -> None:
        self.url, self.status = display_url(url), status
        super().__init__(f"image URL returned {status} {reason}: check image_url ({self.url})")


class ImageFileMissing(PermanentError):
    def __init__(self, url: str, problem: str = "no such file") -> None:
        self.url = display_url(url)
        super().__init__(f"cannot read image {self.url}: {problem}; check image_url")


class BadImage(PermanentError):
    """The bytes arrived but cannot be used; ``url`` says from where."""

    def __init__(self, url: str, message: str) -> None:
        self.url = display_url(url)
        super().__init__(message)


class ImageTooLarge(BadImage):
    def __init__(self, url: str, limit: int) -> None:
        self.limit = limit
        shown = display_url(url)
        super().__init__(url, f"image {shown} is larger than {limit} bytes (MILLSTREAM_MAX_IMAGE_BYTES); "
                              "send a smaller image or raise the limit")


class NotAnImage(BadImage):
    def __init__(self, url: str, hint: str) -> None:
        self.hint = hint
        shown = display_url(url)
        super().__init__(url, f"{shown} is not a {FORMATS} image ({hint}); "
                              "check that image_url points at the image file itself")


class TruncatedImage(BadImage):
    def __init__(self, url: str, image_format: str, detail: str) -> None:
        self.format, self.detail = image_format, detail
        super().__init__(url, f"the {image_format} image {display_url(url)} is truncated or corrupt "
                              f"({detail}); upload the image again")


class ImageTooManyPixels(BadImage):
    def __init__(self, url: str, limit: int, pixels: int | None, size: tuple[int, int] | None = None) -> None:
        self.limit, self.pixels, self.size = limit, pixels, size
        counted = "too many pixels" if pixels is None else f"{pixels} pixels"
        shape = f" ({size[0]} x {size[1]})" if size else ""
        super().__init__(url, f"image {display_url(url)} has {counted}{shape}, over the limit of {limit} "
                              "(MILLSTREAM_MAX_IMAGE_PIXELS); refused as a possible decompression bomb: "
                              "send a smaller image or raise the limit")


class ImageUrlRefused(InvalidPayload):
    """The image URL is not acceptable before any byte is read."""

    def __init__(self, url: str, message: str) -> None:
        self.url = display_url(url)
        super().__init__(message)


class InvalidImageUrl(ImageUrlRefused):
    def __init__(self, url: str, problem: str) -> None:
        super().__init__(url, f"image URL {display_url(url)!r} is not valid: {problem}; check image_url")


class UnsupportedScheme(ImageUrlRefused):
    def __init__(self, url: str, scheme: str) -> None:
        self.scheme = scheme
        super().__init__(url, f"image URL {display_url(url)} has scheme {scheme!r}; "
                              "only http://, https:// and file:// are supported")


class AddressRefused(ImageUrlRefused):
    def __init__(self, url: str, rule: str, metadata: bool = False) -> None:
        self.rule = rule
        # A network in the allow list never opens a metadata address (egress.policy): say what does.
        how = ("list that exact address in MILLSTREAM_FETCH_ALLOW_HOSTS to allow it" if metadata
               else "allow it with MILLSTREAM_FETCH_ALLOW_HOSTS")
        super().__init__(url, f"refusing to fetch {display_url(url)}: its address is {rule}; {how}")


class TooManyRedirects(ImageUrlRefused):
    def __init__(self, url: str, limit: int) -> None:
        self.limit = limit
        super().__init__(url, f"image URL {display_url(url)} redirected more than {limit} times "
                              "(MILLSTREAM_MAX_REDIRECTS); give the final URL in image_url")


class FileUrlsDisabled(ImageUrlRefused):
    def __init__(self, url: str) -> None:
        super().__init__(url, f"refusing to read {display_url(url)}: file:// image URLs are off; list the "
                              "directories images may be read from in MILLSTREAM_FILE_ROOTS")


class FileOutsideRoots(ImageUrlRefused):
    def __init__(self, url: str) -> None:
        super().__init__(url, f"refusing to read {display_url(url)}: the file is outside the directories "
                              "in MILLSTREAM_FILE_ROOTS (after following symlinks and '..')")


class FileHardLinked(ImageUrlRefused):
    def __init__(self, url: str, links: int) -> None:
        self.links = links
        super().__init__(url, f"refusing to read {display_url(url)}: the file has {links} hard links, and a "
                              "hard link under MILLSTREAM_FILE_ROOTS can name a file outside them; "
                              "copy the image instead of linking it")
