"""Size limits from the header, before decoding: each kind of oversized or degenerate image, its exact error."""

from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image

from processors.images.decode import decode
from processors.images.errors import BadImage, ImageTooManyPixels, TruncatedImage
from processors.images.limits import ImageAspectTooExtreme, ImageTooTall, ImageTooWide, check_size
from processors.images.settings import ImageSettings, SizeLimits
from streams.errors import PermanentError
from tests.unit.test_images_decode import encoded, png_claiming

URL = "http://img.example/x"


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def gif_frame_sized(width: int, height: int, frame: int = 0) -> bytes:
    """A real two-frame 10 x 10 GIF whose frame number ``frame`` claims ``width`` x ``height``."""
    frames = [Image.new("RGB", (10, 10), colour) for colour in ("red", "blue")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], optimize=False, disposal=2)
    starts = [i for i in range(len(data)) if data[i] == 0x2C and data[i + 5 : i + 9] == struct.pack("<HH", 10, 10)]
    at = starts[frame] + 5
    return data[:at] + struct.pack("<HH", width, height) + data[at + 4 :]


def gif_screen(width: int, height: int) -> bytes:
    data = encoded(Image.new("RGB", (10, 10)), "GIF")
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def webp_canvas(width: int, height: int) -> bytes:
    """A real animated WebP whose VP8X canvas claims ``width`` x ``height``."""
    data = encoded(Image.new("RGB", (10, 10)), "WEBP", save_all=True,
                   append_images=[Image.new("RGB", (10, 10), "red")])
    at = data.index(b"VP8X") + 12
    return data[:at] + _u24(width - 1) + _u24(height - 1) + data[at + 6 :]


def webp_frame_larger_than_canvas() -> bytes:
    data = encoded(Image.new("RGB", (10, 10)), "WEBP", save_all=True,
                   append_images=[Image.new("RGB", (10, 10), "red")])
    at = data.index(b"ANMF") + 8 + 6
    return data[:at] + _u24(60_000 - 1) + _u24(60_000 - 1) + data[at + 6 :]


def bmp_claiming(width: int, height: int) -> bytes:
    data = encoded(Image.new("RGB", (10, 10)), "BMP")
    return data[:18] + struct.pack("<ii", width, height) + data[26:]


def jpeg_claiming(width: int, height: int) -> bytes:
    data = encoded(Image.new("RGB", (10, 10)), "JPEG")
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


def png_with_late_orientation(width: int, height: int, orientation: int) -> bytes:
    """A real PNG whose eXIf chunk (orientation) comes after its pixels, where the header check cannot see it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(Image.new("RGB", (width, height), "white"), "PNG")
    end = data.index(b"IEND") - 4
    return data[:end] + chunk(b"eXIf", exif.tobytes()[6:]) + data[end:]


def jpeg_rotated(width: int, height: int, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.new("RGB", (width, height), "white"), "JPEG", exif=exif.tobytes())


WIDE = "wider than the limit of 10000 (MILLSTREAM_MAX_IMAGE_WIDTH)"
TALL = "taller than the limit of 30000 (MILLSTREAM_MAX_IMAGE_HEIGHT)"
PIXELS = "over the limit of 40000000 (MILLSTREAM_MAX_IMAGE_PIXELS)"


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        pytest.param(png_claiming(10_001, 10), ImageTooWide, f"is 10001 x 10 pixels (width x height), {WIDE}",
                     id="png-header-over-width"),
        pytest.param(png_claiming(10, 30_001), ImageTooTall, f"is 10 x 30001 pixels (width x height), {TALL}",
                     id="png-header-over-height"),
        pytest.param(png_claiming(1, 2001), ImageAspectTooExtreme,
                     "is 1 x 2001 pixels (width x height): its long side is 2001 times its short side, over the "
                     "limit of 2000 (MILLSTREAM_MAX_IMAGE_ASPECT)", id="png-tall-strip-over-aspect"),
        pytest.param(png_claiming(4001, 2), ImageAspectTooExtreme,
                     "is 4001 x 2 pixels (width x height): its long side is 2000 times its short side, over the "
                     "limit of 2000 (MILLSTREAM_MAX_IMAGE_ASPECT)", id="png-wide-strip-over-aspect"),
        pytest.param(gif_screen(12_000, 100), ImageTooWide, f"is 12000 x 100 pixels (width x height), {WIDE}",
                     id="gif-screen-over-width"),
        pytest.param(gif_screen(65_535, 65_535), ImageTooManyPixels, f"has 4294836225 pixels, {PIXELS}",
                     id="gif-screen-huge"),
        pytest.param(gif_frame_sized(20_000, 10), ImageTooWide, f"is 20000 x 10 pixels (width x height), {WIDE}",
                     id="gif-first-frame-larger-than-canvas"),
        pytest.param(webp_canvas(20_000, 10), ImageTooWide, f"is 20000 x 10 pixels (width x height), {WIDE}",
                     id="webp-canvas-over-width"),
        pytest.param(webp_canvas(2**18, 2**18), ImageTooManyPixels, f"has 68719476736 pixels, {PIXELS}",
                     id="webp-canvas-huge"),
        pytest.param(bmp_claiming(10_001, 10), ImageTooWide, f"is 10001 x 10 pixels (width x height), {WIDE}",
                     id="bmp-header-over-width"),
        pytest.param(bmp_claiming(10, -40_000), ImageTooTall, f"is 10 x 40000 pixels (width x height), {TALL}",
                     id="bmp-top-down-over-height"),
        pytest.param(jpeg_claiming(10, 30_001), ImageTooTall, f"is 10 x 30001 pixels (width x height), {TALL}",
                     id="jpeg-sof-over-height"),
        pytest.param(jpeg_claiming(65_535, 65_535), ImageTooManyPixels, f"has 4294836225 pixels, {PIXELS}",
                     id="jpeg-sof-huge"),
        pytest.param(jpeg_rotated(10, 30_001, 6), ImageTooWide, f"is 30001 x 10 pixels (width x height), {WIDE}",
                     id="jpeg-exif-rotated-over-width"),
        pytest.param(bmp_claiming(0, 10), TruncatedImage,
                     "the BMP image <bytes> is truncated or corrupt (its header cannot be read: cannot identify "
                     "image file); upload the image again", id="bmp-zero-width"),
        pytest.param(jpeg_claiming(10, 0), TruncatedImage,
                     "the JPEG image <bytes> is truncated or corrupt (its header cannot be read: cannot identify "
                     "image file); upload the image again", id="jpeg-zero-height"),
    ],
)
def test_an_image_over_a_limit_is_refused_naming_the_limit_its_setting_and_the_size(
    data: bytes, error: type[BadImage], message: str
) -> None:
    with pytest.raises(BadImage) as caught:
        decode(data)
    assert type(caught.value) is error and isinstance(caught.value, PermanentError)
    assert message in str(caught.value)


def test_the_message_is_whole_and_names_the_url_without_credentials() -> None:
    with pytest.raises(ImageTooWide) as caught:
        decode(png_claiming(10_001, 10), url="http://user:secret@img.example/x.png")
    assert str(caught.value) == (
        "image http://img.example/x.png is 10001 x 10 pixels (width x height), wider than the limit of 10000 "
        "(MILLSTREAM_MAX_IMAGE_WIDTH); send a narrower image or raise it"
    )
    assert caught.value.size == (10_001, 10) and caught.value.limit == 10_000


def test_a_png_whose_late_orientation_turns_it_over_a_limit_is_refused_after_decoding() -> None:
    limits = SizeLimits(max_width=20, max_height=100)
    with pytest.raises(ImageTooWide, match=r"is 30 x 10 pixels .* limit of 20 \(MILLSTREAM_MAX_IMAGE_WIDTH\)"):
        decode(png_with_late_orientation(10, 30, 6), limits=limits)
    assert decode(png_with_late_orientation(10, 30, 1), limits=limits).size == (10, 30)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        pytest.param(encoded(Image.new("RGB", (1, 1)), "PNG"), (1, 1), id="one-pixel"),
        pytest.param(encoded(Image.new("RGB", (1, 1280)), "PNG"), (1, 1280), id="1x1280-strip"),
        pytest.param(encoded(Image.new("RGB", (1280, 1)), "PNG"), (1280, 1), id="1280x1-strip"),
        pytest.param(encoded(Image.new("RGB", (15, 30_000)), "PNG"), (15, 30_000), id="max-height-max-aspect"),
        pytest.param(encoded(Image.new("RGB", (10_000, 5)), "PNG"), (10_000, 5), id="max-width-max-aspect"),
        pytest.param(gif_frame_sized(60_000, 60_000, frame=1), (10, 10), id="gif-later-frame-larger-than-canvas"),
        pytest.param(webp_frame_larger_than_canvas(), (10, 10), id="webp-frame-larger-than-canvas"),
        pytest.param(jpeg_rotated(40, 10, 6), (10, 40), id="jpeg-exif-rotated-upright"),
    ],
)
def test_images_the_limits_admit_decode_to_their_upright_size(data: bytes, size: tuple[int, int]) -> None:
    assert decode(data).size == size


@pytest.mark.parametrize(
    ("width", "height", "error"),
    [(10_000, 4_000, None), (10_001, 1_000, ImageTooWide), (1_000, 30_001, ImageTooTall),
     (15, 30_000, None), (14, 30_000, ImageAspectTooExtreme), (10_000, 5, None), (10_000, 4, ImageAspectTooExtreme),
     (7_000, 7_000, ImageTooManyPixels)],
)
def test_check_size_is_inclusive_at_each_limit(width: int, height: int, error: type[BadImage] | None) -> None:
    if error is None:
        check_size(URL, width, height, SizeLimits())
    else:
        with pytest.raises(error):
            check_size(URL, width, height, SizeLimits())


def test_the_settings_carry_the_limits_read_before_decoding() -> None:
    settings = ImageSettings(max_image_width=800, max_image_height=900, max_image_aspect=3.5, max_image_pixels=10**6)
    assert settings.size_limits() == SizeLimits(max_pixels=10**6, max_width=800, max_height=900, max_aspect=3.5)
    with pytest.raises(ImageAspectTooExtreme, match=r"over the limit of 3\.5 \(MILLSTREAM_MAX_IMAGE_ASPECT\)"):
        decode(encoded(Image.new("RGB", (40, 10)), "PNG"), limits=settings.size_limits())
