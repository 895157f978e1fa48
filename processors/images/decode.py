"""Bytes to RGB pixels: sniff the format by magic bytes, check the size, then decode.

Order matters for safety: the format comes from the bytes (never from a
Content-Type or file name), Pillow may only use that one plugin, and the size
(pixels, width, height, aspect: processors.images.limits) is checked from the
header before anything is decompressed, so a small file that claims 100k x 100k
pixels costs nothing. The size checked is the upright one where the header
already holds the EXIF orientation; the upright size is checked again after
decoding (a PNG may carry its orientation after the pixels). A GIF whose first
frame is larger than its canvas is opened at the frame's size, so the check
sees it; later frames are never decoded. Pillow's own
``DecompressionBombError`` (at twice its ``MAX_IMAGE_PIXELS``) lands in
ImageTooManyPixels. Blocking and CPU-bound: callers run ``decode`` in a thread.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from processors.images.errors import ImageTooManyPixels, NotAnImage, TruncatedImage
from processors.images.limits import check_size
from processors.images.settings import SizeLimits

# What Pillow and its plugins raise on bad data; anything else is a bug and propagates.
_BAD_DATA = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_ORIENTATION = 0x0112
_BUFFER = re.compile(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>")
_SIDEWAYS = range(5, 9)  # EXIF orientations that swap width and height
_WHITE = (255, 255, 255, 255)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """An image as RGB pixels, ``(height, width, 3)`` uint8, read-only (copy to draw on it)."""

    pixels: npt.NDArray[np.uint8]
    format: str  # "JPEG", "PNG", "WEBP", "GIF" or "BMP": what the bytes are, not what they claimed
    byte_count: int  # size of the encoded image

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, in Pillow's order."""
        return self.width, self.height


def sniff(data: bytes) -> str | None:
    """The Pillow format name the magic bytes announce, or None if none we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    # "BM" alone is too weak a signature (text can start with it): also ask for a known DIB header.
    if data[:2] == b"BM" and len(data) >= 18 and struct.unpack_from("<I", data, 14)[0] in _BMP_HEADER_SIZES:
        return "BMP"
    return None


def describe(data: bytes, content_type: str | None = None) -> str:
    """A hint at what non-image bytes are, for the error message."""
    served = f", served as {content_type}" if content_type else ""
    head = data[:1024].lstrip().lower()
    if not data:
        return f"it is empty{served}"
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return f"it is an SVG image, which is not supported{served}"
    if head.startswith(b"<"):
        return f"it looks like an HTML or XML page{served}"
    if head.startswith((b"{", b"[")):
        return f"it looks like JSON{served}"
    for magic, name in ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%PDF", "PDF")):
        if data.startswith(magic):
            return f"it is a {name} file, which is not supported{served}"
    if data[4:8] == b"ftyp":
        return f"it is a HEIF/AVIF image, which is not supported{served}"
    return f"it starts with bytes {data[:8].hex(' ')}{served}"


def decode(
    data: bytes,
    *,
    max_pixels: int | None = None,
    limits: SizeLimits | None = None,
    url: str = "<bytes>",
    content_type: str | None = None,
) -> DecodedImage:
    """Decode ``data`` within ``limits`` (default: ImageSettings' defaults, ``max_pixels`` if given).

    Raises NotAnImage, TruncatedImage, ImageTooManyPixels or an images_limits error (all permanent).
    """
    if limits is None:
        limits = SizeLimits() if max_pixels is None else SizeLimits(max_pixels=max_pixels)
    image_format = _format(data, url, content_type)
    with _open(data, image_format, url, limits.max_pixels) as image:
        _checked_size(image, image_format, url, limits)
        try:
            image.load()
            pixels = to_rgb(upright(image))
        except Image.DecompressionBombError as error:  # a GIF or WebP frame larger than the canvas
            raise TruncatedImage(url, image_format, str(error)) from None
        except _BAD_DATA as error:
            raise TruncatedImage(url, image_format, _detail(error)) from None
    check_size(url, int(pixels.shape[1]), int(pixels.shape[0]), limits)
    pixels.setflags(write=False)
    return DecodedImage(pixels, image_format, len(data))


def header_size(
    data: bytes, *, limits: SizeLimits, url: str = "<bytes>", content_type: str | None = None
) -> tuple[int, int]:
    """The upright ``(width, height)`` the header of ``data`` claims, checked within ``limits``;
    no pixel is decoded. Raises what ``decode`` raises for the header (all permanent)."""
    image_format = _format(data, url, content_type)
    with _open(data, image_format, url, limits.max_pixels) as image:
        return _checked_size(image, image_format, url, limits)


def _format(data: bytes, url: str, content_type: str | None) -> str:
    image_format = sniff(data)
    if image_format is None:
        raise NotAnImage(url, describe(data, content_type))
    return image_format


def _checked_size(image: Image.Image, image_format: str, url: str, limits: SizeLimits) -> tuple[int, int]:
    """The upright size the opened ``image``'s header claims, after check_size."""
    width, height = image.size
    if width < 1 or height < 1:
        raise TruncatedImage(url, image_format, f"its header says {width} x {height} pixels")
    if _header_orientation(image) in _SIDEWAYS:
        width, height = height, width
    check_size(url, width, height, limits)
    return width, height


def _header_orientation(image: Image.Image) -> int:
    """The EXIF orientation if the header already holds it, else 1; never decodes pixels."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow's PNG getexif() would decode the whole image to look after the pixels
    try:
        return int(image.getexif().get(_ORIENTATION, 1))
    except (*_BAD_DATA, TypeError):
        return 1


def _open(data: bytes, image_format: str, url: str, max_pixels: int) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=[image_format])
    except Image.DecompressionBombError as error:
        # Pillow's own limit (twice its MAX_IMAGE_PIXELS) fires inside open(), before we see the
        # size; its message still carries the pixel count.
        counted = re.search(r"\((\d+) pixels\)", str(error))
        raise ImageTooManyPixels(url, max_pixels, int(counted[1]) if counted else None) from None
    except _BAD_DATA as error:
        raise TruncatedImage(url, image_format, f"its header cannot be read: {_detail(error)}") from None


def upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so text is upright for OCR as a viewer would show it."""
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except _BAD_DATA:
        return image  # a broken EXIF block must not cost the image: keep it as stored
    if orientation in range(2, 9):
        return ImageOps.exif_transpose(image)
    return image


def to_rgb(image: Image.Image) -> npt.NDArray[np.uint8]:
    """RGB uint8 pixels; transparency is laid over white (text stays readable), 16-bit scaled down."""
    if image.mode.startswith("I"):
        # Pillow clips 16-bit grey to 255 when converting; scale it instead.
        grey = (np.asarray(image).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    # convert() copies even an RGB image: 160 MB more at 40 M pixels, so only when needed.
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _detail(error: BaseException) -> str:
    # Pillow names the BytesIO it read from; its address would make every message unique.
    return _BUFFER.sub("", str(error)) or type(error).__name__
