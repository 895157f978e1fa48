"""Rendering: text colour from the original, fitted size, nothing outside the boxes."""

from __future__ import annotations

import numpy as np
import pytest

from processors.stages.render import DEFAULT_FONT, Placement, Renderer, fit, text_colour
from tests.conftest import require_font

BOX = [(20.0, 30.0), (220.0, 30.0), (220.0, 70.0), (20.0, 70.0)]


def striped(text_rgb: tuple[int, int, int], background: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((100, 240, 3), dtype=np.uint8)
    image[:] = background
    image[40:44, 30:200] = text_rgb  # thin strokes: the minority of the box's pixels
    image[55:58, 30:150] = text_rgb
    return image


@pytest.mark.parametrize(("text", "background"), [((200, 20, 20), (250, 250, 250)), ((255, 255, 255), (10, 30, 90))])
def test_text_colour_is_the_minority_luminance_class(text, background) -> None:
    image = striped(text, background)
    assert text_colour(image, Placement(BOX, "x").rect(240, 100)) == text


def test_font_size_is_the_largest_that_fits() -> None:
    require_font(DEFAULT_FONT)
    font, lines = fit("무료배송", 200, 40, DEFAULT_FONT)
    assert lines == ["무료배송"] and font.getlength("무료배송") <= 200 and font.size >= 30
    bigger, _ = fit("무료배송", 400, 80, DEFAULT_FONT)
    assert bigger.size > font.size


def test_long_text_in_a_small_box_wraps_at_the_smallest_size() -> None:
    require_font(DEFAULT_FONT)
    font, lines = fit("기간 한정 할인 정품 보장 무료배송 신상품", 60, 60, DEFAULT_FONT)
    assert len(lines) > 1 and all(font.getlength(line) <= 60 for line in lines)


def test_rendering_changes_only_pixels_inside_the_boxes() -> None:
    require_font(DEFAULT_FONT)
    original = striped((0, 0, 0), (255, 255, 255))
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
def test_a_flat_box_gives_its_own_colour_instead_of_failing(flat: tuple[int, int, int]) -> None:
    image = np.full((100, 240, 3), flat, np.uint8)
    assert text_colour(image, Placement(BOX, "x").rect(240, 100)) == flat


def test_a_box_over_a_large_image_reads_a_sample_and_still_finds_the_text_colour() -> None:
    image = np.full((3000, 2000, 3), 250, np.uint8)
    image[::10] = (200, 20, 20)  # every tenth row is "text": the minority class on any grid
    assert text_colour(image, (0, 0, 2000, 3000)) == (200, 20, 20)
