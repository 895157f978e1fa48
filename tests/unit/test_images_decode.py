"""Decoding: formats by magic bytes, the pixel limit before decoding, RGB out, clear errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from processors.images.decode import decode, describe, sniff
from processors.images.errors import ImageTooManyPixels, NotAnImage, TruncatedImage
from streams.errors import PermanentError

LIMIT = 40_000_000


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_each_accepted_format_decodes_to_rgb_uint8_of_the_right_size(image_format: str) -> None:
    data = encoded(Image.new("RGB", (31, 17), (250, 250, 250)), image_format)
    image = decode(data, max_pixels=LIMIT)
    assert (image.format, image.size, image.width, image.height) == (image_format, (31, 17), 31, 17)
    assert image.pixels.shape == (17, 31, 3) and image.pixels.dtype == np.uint8
    assert image.byte_count == len(data)


def test_pixels_are_read_only_so_a_shared_image_cannot_be_changed_by_accident() -> None:
    image = decode(encoded(Image.new("RGB", (4, 4)), "PNG"), max_pixels=LIMIT)
    with pytest.raises(ValueError, match="read-only"):
        image.pixels[0, 0, 0] = 1


def test_a_tall_product_detail_image_is_within_the_default_limit() -> None:
    image = decode(encoded(Image.new("L", (790, 20000), 255), "PNG"), max_pixels=LIMIT)
    assert image.size == (790, 20000)


def test_the_format_comes_from_the_bytes_not_from_the_content_type() -> None:
    image = decode(encoded(Image.new("RGB", (3, 3)), "JPEG"), max_pixels=LIMIT, content_type="image/png")
    assert image.format == "JPEG"


def test_transparent_pixels_become_white_so_dark_text_stays_readable() -> None:
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 255))
    pixels = decode(encoded(rgba, "PNG"), max_pixels=LIMIT).pixels
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[0, 1].tolist() == [0, 0, 0]


def test_a_palette_image_with_a_transparent_index_is_laid_over_white() -> None:
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((1, 0), 1)
    pixels = decode(encoded(palette, "PNG", transparency=0), max_pixels=LIMIT).pixels
    assert pixels[0].tolist() == [[255, 255, 255], [10, 20, 30]]


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped() -> None:
    grey = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    pixels = decode(encoded(grey, "PNG"), max_pixels=LIMIT).pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied_so_text_is_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    image = decode(encoded(Image.new("RGB", (40, 10)), "JPEG", exif=exif.tobytes()), max_pixels=LIMIT)
    assert image.size == (10, 40)


def test_a_header_claiming_100k_by_100k_pixels_is_refused_as_a_bomb_without_decoding() -> None:
    with pytest.raises(ImageTooManyPixels, match=r"10000000000 pixels.*MILLSTREAM_MAX_IMAGE_PIXELS") as caught:
        decode(png_claiming(100_000, 100_000), max_pixels=LIMIT, url="http://x/bomb.png")
    assert isinstance(caught.value, PermanentError)
    assert "decompression bomb" in str(caught.value)


def test_an_image_over_the_configured_pixel_limit_is_refused_with_its_size() -> None:
    with pytest.raises(ImageTooManyPixels, match=r"50000000 pixels \(10000 x 5000\), over the limit of 40000000"):
        decode(png_claiming(10_000, 5_000), max_pixels=LIMIT)


def test_a_real_image_one_pixel_over_the_limit_is_refused() -> None:
    data = encoded(Image.new("RGB", (11, 10)), "PNG")
    with pytest.raises(ImageTooManyPixels):
        decode(data, max_pixels=109)
    assert decode(data, max_pixels=110).size == (11, 10)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_a_truncated_image_is_reported_as_truncated(image_format: str) -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encoded(noise, image_format)
    with pytest.raises(TruncatedImage, match=f"the {image_format} image .* is truncated or corrupt"):
        decode(data[: len(data) // 2], max_pixels=LIMIT)


def test_a_cut_off_header_is_reported_as_truncated() -> None:
    with pytest.raises(TruncatedImage, match="header cannot be read"):
        decode(encoded(Image.new("RGB", (8, 8)), "PNG")[:20], max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"", "it is empty"),
        (b"<!DOCTYPE html><html>Not found</html>", "looks like an HTML or XML page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG image, which is not supported"),
        (b'{"error": "nope"}', "looks like JSON"),
        (b"%PDF-1.7 ...", "PDF file"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF file"),
        (b"\x00\x00\x00\x1cftypavif", "HEIF/AVIF image"),
        (b"BMW owners club", "starts with bytes 42 4d 57"),
        (b"\x01\x02\x03", "starts with bytes 01 02 03"),
    ],
)
def test_bytes_that_are_not_an_image_say_what_they_look_like(data: bytes, hint: str) -> None:
    with pytest.raises(NotAnImage, match="is not a JPEG, PNG, WebP, GIF or BMP image") as caught:
        decode(data, max_pixels=LIMIT)
    assert hint in str(caught.value)


def test_the_not_an_image_message_names_the_content_type_it_was_served_with() -> None:
    assert describe(b"<html>", "text/html") == "it looks like an HTML or XML page, served as text/html"


@pytest.mark.parametrize(
    ("data", "image_format"),
    [(b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF89a", "GIF"), (b"GIF87a", "GIF"),
     (b"RIFF\0\0\0\0WEBPVP8 ", "WEBP"), (b"BM" + b"\0" * 12 + b"\x28\0\0\0", "BMP"),
     (b"BM" + b"\0" * 12 + b"\x99\0\0\0", None), (b"\x89PNG", None), (b"RIFF\0\0\0\0WAVE", None)],
)
def test_sniff_reads_magic_bytes(data: bytes, image_format: str | None) -> None:
    assert sniff(data) == image_format
