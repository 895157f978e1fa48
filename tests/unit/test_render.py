"""Rendering: the original's look read from its pixels, fitted size, nothing outside the boxes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from processors.stages.render import DEFAULT_FONT, Placement, Renderer
from processors.stages.render_layout import fit
from processors.stages.render_style import contrast_ratio, estimate_style
from tests.conftest import require_font

BOX = [(20.0, 30.0), (220.0, 30.0), (220.0, 70.0), (20.0, 70.0)]


def striped(text_rgb: tuple[int, int, int], background: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((100, 240, 3), dtype=np.uint8)
    image[:] = background
    image[40:44, 30:200] = text_rgb  # thin strokes: the minority of the box's pixels
    image[55:58, 30:150] = text_rgb
    return image


@pytest.mark.parametrize(("text", "background"), [((200, 20, 20), (250, 250, 250)), ((255, 255, 255), (10, 30, 90))])
def test_text_colour_is_read_from_the_pixels_that_differ_from_the_border(text, background) -> None:
    style = estimate_style(striped(text, background), Placement(BOX, "x").rect(240, 100))
    assert (style.fill, style.background, style.stroke) == (text, background, None)


def test_font_size_is_the_largest_that_fits() -> None:
    require_font(DEFAULT_FONT)
    layout = fit("무료배송", 200, 40, DEFAULT_FONT)
    assert layout.lines == ("무료배송",) and layout.fits and layout.font.size >= 30
    assert fit("무료배송", 400, 80, DEFAULT_FONT).font.size > layout.font.size


def test_long_text_in_a_small_box_wraps_and_fits() -> None:
    require_font(DEFAULT_FONT)
    layout = fit("기간 한정 할인 정품 보장 무료배송 신상품", 60, 60, DEFAULT_FONT)
    assert len(layout.lines) > 1 and layout.fits and layout.height <= 60
    assert all(layout.font.getlength(line) <= 60 for line in layout.lines)


def test_rendering_changes_only_pixels_inside_the_boxes() -> None:
    require_font(DEFAULT_FONT)
    canvas = Image.new("RGB", (240, 100), "white")
    ImageDraw.Draw(canvas).text((28, 34), "全场包邮", font=ImageFont.truetype(DEFAULT_FONT, 30), fill="black")
    original = np.asarray(canvas)
    cleaned = np.full_like(original, 255)
    out = Renderer().render(cleaned, original, [Placement(BOX, "무료배송")])
    changed = np.argwhere((out != cleaned).any(axis=2))
    assert len(changed) > 50, "the translation is drawn"
    assert changed[:, 0].min() >= 30 and changed[:, 0].max() < 70
    assert changed[:, 1].min() >= 20 and changed[:, 1].max() < 220
    assert out[changed[:, 0], changed[:, 1]].mean() < 128, "dark text, as in the original"


def test_missing_font_is_a_clear_configuration_error(tmp_path) -> None:
    with pytest.raises(Exception, match="fonts-noto-cjk"):
        Renderer(str(tmp_path / "none.ttc"))


@pytest.mark.parametrize("flat", [(255, 255, 255), (0, 0, 0), (120, 40, 200)])
def test_a_flat_box_gives_black_or_white_whichever_stands_out(flat: tuple[int, int, int]) -> None:
    image = np.full((100, 240, 3), flat, np.uint8)
    style = estimate_style(image, Placement(BOX, "x").rect(240, 100))
    assert style.background == flat and style.glyph_height is None
    other = (0, 0, 0) if style.fill == (255, 255, 255) else (255, 255, 255)
    assert style.fill in {(0, 0, 0), (255, 255, 255)}
    assert contrast_ratio(style.fill, flat) >= contrast_ratio(other, flat)


def test_a_box_over_a_large_image_reads_a_sample_and_still_finds_the_text_colour() -> None:
    image = np.full((3000, 2000, 3), 250, np.uint8)
    for row in range(100, 2900, 300):  # lines of "text", 40 rows tall, on a light page
        image[row:row + 40, 100:1900:20] = (200, 20, 20)
    assert estimate_style(image, (0, 0, 2000, 3000)).fill == (200, 20, 20)
