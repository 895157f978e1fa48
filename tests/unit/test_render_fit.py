"""Rendered translations on generated images: inside the box, the original's colour and size, legible.

Each image is drawn with Pillow: a ground colour, Chinese text of a known colour
(and stroke) in a known box. The renderer gets that image as the original and
the bare ground as the cleaned image, so every pixel it changes is its own.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from processors.stages.render import DEFAULT_FONT, Placement, Renderer
from processors.stages.render_layout import fit
from tests.conftest import require_font

RGB = tuple[int, int, int]
W, H = 480, 200


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    require_font(DEFAULT_FONT)
    return Renderer()


def luminance(colour: np.ndarray) -> float:
    """WCAG 2 relative luminance, written out here rather than taken from the renderer."""
    c = np.asarray(colour, dtype=np.float64) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast(a: np.ndarray, b: np.ndarray) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def original(ground: RGB, ink: RGB, box: tuple[int, int, int, int], text: str = "全场包邮",
             size: int = 40, stroke: tuple[RGB, int] | None = None, at: int = 8) -> np.ndarray:
    canvas = Image.new("RGB", (W, H), ground)
    face = ImageFont.truetype(DEFAULT_FONT, size)
    x0, y0, _, y1 = box
    width = stroke[1] if stroke else 0
    _, top, _, bottom = face.getbbox(text, stroke_width=width)
    ImageDraw.Draw(canvas).text((x0 + at, y0 + (y1 - y0 - (bottom - top)) / 2 - top), text, font=face,
                                fill=ink, stroke_width=width, stroke_fill=stroke[0] if stroke else None)
    return np.asarray(canvas)


def corners(box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def drawn(out: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    return (out.astype(int) - cleaned).any(axis=2)


def core_colour(out: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    """The median of the changed pixels farthest from the ground: the ink, not its blended edges."""
    distance = np.linalg.norm(out.astype(float) - cleaned, axis=2)
    return np.median(out[distance >= 0.9 * distance.max()], axis=0)


BOX = (40, 60, 400, 130)
CASES = [((250, 250, 245), (20, 20, 20)), ((15, 30, 90), (250, 250, 250)), ((245, 235, 210), (190, 30, 40)),
         ((40, 120, 60), (255, 230, 0))]


@pytest.mark.parametrize(("ground", "ink"), CASES)
def test_the_text_takes_the_colour_of_the_original_glyphs_and_keeps_their_contrast(
        renderer: Renderer, ground: RGB, ink: RGB) -> None:
    image = original(ground, ink, BOX)
    cleaned = np.full_like(image, ground)
    out = renderer.render(cleaned, image, [Placement(corners(BOX), "전 품목 무료배송")])
    colour = core_colour(out, cleaned)
    assert np.linalg.norm(colour - ink) <= 12, (colour, ink)
    assert contrast(colour, np.array(ground)) >= 0.9 * contrast(np.array(ink), np.array(ground))


@pytest.mark.parametrize("text", ["무료배송", "기간 한정 할인 정품 보장 무료배송 신상품 출시 7일 무조건 교환·반품 가능"])
@pytest.mark.parametrize("box", [(40, 60, 400, 130), (300, 20, 380, 180), (5, 5, 60, 30)])
def test_every_drawn_pixel_lies_inside_the_box(renderer: Renderer, text: str, box) -> None:
    image = original((250, 250, 250), (0, 0, 0), box, size=max(10, (box[3] - box[1]) // 2), at=2)
    cleaned = np.full_like(image, 250)
    out = renderer.render(cleaned, image, [Placement(corners(box), text)])
    rows, cols = np.nonzero(drawn(out, cleaned))
    assert len(rows) > 0
    x0, y0, x1, y1 = box
    assert rows.min() >= y0 and rows.max() < y1 and cols.min() >= x0 and cols.max() < x1


def test_a_slanted_box_clips_to_its_quadrilateral_not_its_rectangle(renderer: Renderer) -> None:
    quad = [(60.0, 40.0), (400.0, 80.0), (390.0, 160.0), (50.0, 120.0)]
    image = original((250, 250, 250), (0, 0, 0), (60, 60, 400, 140))
    cleaned = np.full_like(image, 250)
    out = renderer.render(cleaned, image, [Placement(quad, "전 품목 무료배송 " * 3)])
    inside = Image.new("L", (W, H), 0)
    ImageDraw.Draw(inside).polygon(quad, fill=255)
    changed = drawn(out, cleaned)
    assert changed.sum() > 100 and not (changed & (np.asarray(inside) == 0)).any()


def test_a_long_translation_shrinks_and_wraps_and_still_fits() -> None:
    require_font(DEFAULT_FONT)
    long = "기간 한정 할인 정품 보장 무료배송 신상품 출시 7일 무조건 교환·반품 가능 " * 2
    layout = fit(long, 360, 70, DEFAULT_FONT, glyph_height=35)
    assert layout.fits and len(layout.lines) > 1 and layout.height <= 70
    assert all(layout.font.getbbox(line, anchor="ls")[2] - layout.font.getbbox(line, anchor="ls")[0] <= 360
               for line in layout.lines)
    assert layout.font.size < fit("무료배송", 360, 70, DEFAULT_FONT, glyph_height=35).font.size


def test_a_word_that_cannot_break_still_fits_by_shrinking() -> None:
    require_font(DEFAULT_FONT)
    layout = fit("무료배송무료배송무료배송무료배송", 80, 40, DEFAULT_FONT, glyph_height=30)
    assert layout.fits and layout.height <= 40


def test_a_short_word_is_not_blown_up_past_the_original_glyph_height(renderer: Renderer) -> None:
    box = (40, 20, 440, 190)  # a tall box around one line of 30 px text
    image = original((250, 250, 250), (0, 0, 0), box, size=30)
    cleaned = np.full_like(image, 250)
    rows = np.nonzero((image < 128).any(axis=(1, 2)))[0]
    glyph_height = rows.max() - rows.min() + 1
    out = renderer.render(cleaned, image, [Placement(corners(box), "신상")])
    rows = np.nonzero((out < 128).any(axis=(1, 2)))[0]
    assert rows.max() - rows.min() + 1 <= 1.2 * glyph_height


def test_a_stroked_original_gives_a_stroked_translation(renderer: Renderer) -> None:
    image = original((120, 120, 120), (255, 255, 255), BOX, stroke=((0, 0, 0), 3))
    cleaned = np.full_like(image, 120)
    out = renderer.render(cleaned, image, [Placement(corners(BOX), "무료배송")])
    changed = out[drawn(out, cleaned)].astype(int)
    white = (np.abs(changed - 255) <= 10).all(axis=1).sum()
    black = (changed <= 10).all(axis=1).sum()
    assert white > 100 and black > 100, (white, black)


def test_text_that_would_vanish_on_the_new_ground_gets_an_outline(renderer: Renderer) -> None:
    image = original((250, 250, 250), (30, 30, 30), BOX)
    cleaned = np.full_like(image, 40)  # the cleaned ground came out as dark as the text
    out = renderer.render(cleaned, image, [Placement(corners(BOX), "무료배송")])
    changed = out[drawn(out, cleaned)].astype(float)
    lightest = changed[np.argsort(changed.sum(axis=1))[-20:]].mean(axis=0)
    assert contrast(lightest, np.array([40, 40, 40])) >= 3


def ink_columns(out: np.ndarray, cleaned: np.ndarray, box) -> tuple[int, int]:
    x0, y0, x1, y1 = box
    cols = np.nonzero(drawn(out, cleaned)[y0:y1, x0:x1].any(axis=0))[0]
    return int(cols.min()), int(x1 - x0 - 1 - cols.max())


@pytest.mark.parametrize(("boxes", "side"), [
    ([(20, 20, 460, 60), (20, 70, 300, 110), (20, 120, 380, 160)], "left"),
    ([(20, 20, 460, 60), (180, 70, 460, 110), (100, 120, 460, 160)], "right"),
    ([(20, 20, 460, 60), (100, 70, 380, 110), (60, 120, 420, 160)], "centre"),
])
def test_lines_of_one_paragraph_keep_the_edge_they_share(renderer: Renderer, boxes, side: str) -> None:
    canvas = Image.new("RGB", (W, H), (250, 250, 250))
    face = ImageFont.truetype(DEFAULT_FONT, 30)
    for x0, y0, x1, _ in boxes:
        ImageDraw.Draw(canvas).text((x0 + 2, y0 + 2), "全场包邮" * ((x1 - x0) // 130), font=face, fill=(0, 0, 0))
    image = np.asarray(canvas)
    cleaned = np.full_like(image, 250)
    out = renderer.render(cleaned, image, [Placement(corners(b), "신상") for b in boxes])
    for box in boxes:
        left, right = ink_columns(out, cleaned, box)
        if side == "left":
            assert left <= 3 < right
        elif side == "right":
            assert right <= 3 < left
        else:
            assert abs(left - right) <= 3


def test_a_lone_box_follows_its_ink_margins(renderer: Renderer) -> None:
    image = original((250, 250, 250), (0, 0, 0), BOX, size=40, at=4)  # ink hugs the left edge
    cleaned = np.full_like(image, 250)
    out = renderer.render(cleaned, image, [Placement(corners(BOX), "신상")])
    left, right = ink_columns(out, cleaned, BOX)
    assert left <= 3 < right
