"""The OCR engine's working size: replayed exactly, bounded by construction for every band, checked before OCR."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from processors.images.settings import SizeLimits
from processors.local.samples import find_cjk_font
from processors.stages.ocr import OcrEngine, OcrFailed, bands
from processors.stages.ocr_fit import (
    MAX_DET_PIXELS,
    EngineGeometry,
    Fit,
    check_working_size,
    det_shape,
    fit,
    fitted_band,
)

LIMITS = SizeLimits()


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine()


def rapidocr_det_shape(rapid: object, height: int, width: int) -> tuple[int, int]:
    """The detector input rapidocr itself builds, through its own functions."""
    image = np.zeros((height, width, 3), np.uint8)
    image, _, _ = rapid.preprocess(image)  # type: ignore[attr-defined]
    image, _ = rapid.maybe_add_letterbox(image, {})  # type: ignore[attr-defined]
    resized = rapid.text_det.get_preprocess(max(image.shape[:2])).resize(image)  # type: ignore[attr-defined]
    return (0, 0) if resized is None else resized.shape[:2]


@pytest.mark.parametrize(
    ("height", "width"),
    [(10, 10), (20, 400), (40, 600), (64, 3000), (100, 2500), (500, 2000), (33, 2000), (1280, 790), (3000, 1500),
     (1280, 160), (160, 1280), (2000, 250), (250, 2000), (1, 1), (31, 31), (2001, 2001)],
)
def test_det_shape_replays_rapidocrs_own_resizing(engine: OcrEngine, height: int, width: int) -> None:
    rapid = engine._engine()
    assert det_shape(height, width, EngineGeometry.of(rapid)) == rapidocr_det_shape(rapid, height, width)


def test_the_geometry_read_from_the_engine_is_the_one_fit_assumes(engine: OcrEngine) -> None:
    assert EngineGeometry.of(engine._engine()) == EngineGeometry()


@pytest.mark.parametrize(
    ("height", "width", "unfitted"),
    [(1280, 1, (883200, 736)), (1, 1280, (9600, 38400)), (1280, 15, (58880, 736))],
)
def test_thin_strips_would_have_grown_many_times_past_the_bound_and_fitted_they_stay_within_it(
    height: int, width: int, unfitted: tuple[int, int]
) -> None:
    geometry = EngineGeometry()
    assert det_shape(height, width, geometry) == unfitted
    shape = fit(height, width, geometry)
    fitted_h, fitted_w = det_shape(shape.padded_height, shape.padded_width, geometry)
    assert fitted_h * fitted_w <= MAX_DET_PIXELS < unfitted[0] * unfitted[1] // 9


@given(width=st.integers(1, LIMITS.max_width), height=st.integers(1, LIMITS.max_height))
def test_every_band_of_every_admitted_size_gives_a_bounded_detector_input(width: int, height: int) -> None:
    geometry = EngineGeometry()
    for top, bottom in bands(height, width):
        shape = fit(bottom - top, width, geometry)
        h, w = shape.padded_height, shape.padded_width
        assert min(h, w) >= 32 and max(h, w) <= geometry.max_side_len and max(h, w) <= 8 * min(h, w)
        assert (shape.height, shape.width) <= (h, w) and shape.height <= h and shape.width <= w
        det_h, det_w = det_shape(h, w, geometry)
        assert det_h * det_w <= MAX_DET_PIXELS
        check_working_size(shape, geometry)


def test_a_changed_engine_configuration_is_refused_before_the_engine_runs() -> None:
    grown = EngineGeometry(limit_side_len=4000)
    with pytest.raises(ValueError) as caught:
        check_working_size(Fit(1280, 790, 1280, 790), grown)
    assert str(caught.value).startswith(
        "the OCR engine would build a 4000 x 6496 detector input for a 790 x 1280 band, over the bound of "
        "4500000 pixels; rapidocr's resizing (EngineGeometry(max_side_len=2000"
    )


class GrownEngine:
    """A RapidOCR stand-in configured to scale short sides up to 4000 px; it must never run."""

    max_side_len, min_side_len, min_height, width_height_ratio = 2000, 30, 30, 8
    text_det = SimpleNamespace(limit_side_len=4000, limit_type="min")

    def __call__(self, image: np.ndarray) -> None:
        raise AssertionError("the engine ran")


def test_read_sync_raises_ocr_failed_without_calling_an_engine_whose_resizing_grew() -> None:
    ocr = OcrEngine()
    ocr._local.engine = GrownEngine()
    with pytest.raises(OcrFailed, match="detector input for a 790 x 1280 band, over the bound of 4500000"):
        ocr.read_sync(np.zeros((1280, 790, 3), np.uint8))


def test_a_fitted_band_is_bgr_scaled_then_padded_white_after_the_pixels() -> None:
    band = np.zeros((10, 4000, 3), np.uint8)
    band[..., 0] = 200  # red in RGB
    shape = fit(10, 4000, EngineGeometry())
    out = fitted_band(band, shape)
    assert shape == Fit(5, 2000, 500, 2000) and out.shape == (500, 2000, 3)
    assert out[0, 0].tolist() == [0, 0, 200] and out[5:].min() == 255


def test_text_in_a_wide_banner_the_fit_scales_and_pads_is_found_where_it_was_drawn(engine: OcrEngine) -> None:
    canvas = Image.new("RGB", (3000, 120), "white")
    ImageDraw.Draw(canvas).text((2000, 20), "限时特价", font=ImageFont.truetype(str(find_cjk_font()), 80), fill="black")
    boxes = engine.read_sync(np.asarray(canvas))
    assert [box[1][0] for box in boxes] == ["限时特价"]
    xs, ys = [p[0] for p in boxes[0][0]], [p[1] for p in boxes[0][0]]
    assert 1950 <= min(xs) < max(xs) <= 2400 and 0 <= min(ys) < max(ys) <= 120
