"""Pre- and postprocessing: fitting any image to a model's shape and back, within the inference budget."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from processors.images.errors import BadImage
from processors.images.limits import InferenceInputTooLarge
from processors.images.settings import MAX_INFERENCE_BYTES
from processors.inference.client import InferenceConfig, InpaintClient, Variant
from processors.inference.tiles import (
    ModelShape,
    cut_tiles,
    input_bytes,
    plan_tiles,
    restore,
    scale_inputs,
    stitch,
)

SHORT, LONG = ModelShape(512, 512), ModelShape(1024, 384)


@pytest.mark.parametrize(
    ("size", "tile", "scaled", "rows", "cols"),
    [
        ((512, 512), SHORT, (512, 512), (0,), (0,)),
        ((800, 800), SHORT, (512, 512), (0,), (0,)),
        ((300, 200), SHORT, (300, 200), (0,), (0,)),  # never scaled up: padded instead
        ((400, 1300), SHORT, (400, 1300), (0,), (0, 394, 788)),
        ((2250, 750), LONG, (1152, 384), (0, 128), (0,)),
    ],
)
def test_images_are_scaled_down_to_fit_the_shorter_side_and_tiled_along_the_longer(
    size: tuple[int, int],
    tile: ModelShape,
    scaled: tuple[int, int],
    rows: tuple[int, ...],
    cols: tuple[int, ...],
) -> None:
    plan = plan_tiles(*size, tile)

    assert (plan.scaled, plan.rows, plan.cols) == (scaled, rows, cols)


def test_only_tiles_with_masked_pixels_are_cut_and_they_have_the_model_shape() -> None:
    image = np.random.default_rng(0).integers(0, 256, (400, 1300, 3), dtype=np.uint8)
    mask = np.zeros((400, 1300), np.uint8)
    mask[100:120, 1200:1250] = 255  # only in the last tile
    plan = plan_tiles(400, 1300, SHORT)

    origins, tiles, masks = cut_tiles(*scale_inputs(image, mask, plan), plan)

    assert origins == [(0, 788)]
    assert tiles.shape == (1, 512, 512, 3) and masks.shape == (1, 512, 512, 1)
    assert np.array_equal(tiles[0, :400], image[:, 788:1300])
    assert np.array_equal(tiles[0, 400:], np.repeat(image[399:400, 788:1300], 112, axis=0))  # edge padding


def test_a_masked_pixel_stays_masked_when_the_image_is_scaled_down() -> None:
    image = np.zeros((1000, 1000, 3), np.uint8)
    mask = np.zeros((1000, 1000), np.uint8)
    mask[501, 333] = 1
    plan = plan_tiles(1000, 1000, SHORT)

    _, scaled_mask = scale_inputs(image, mask, plan)

    assert scaled_mask.sum() > 0 and set(np.unique(scaled_mask)) == {0, 255}


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 1500), width=st.integers(1, 1500), overlap=st.integers(0, 64))
def test_stitching_unchanged_tiles_gives_back_the_scaled_image(height: int, width: int, overlap: int) -> None:
    rng = np.random.default_rng(height * 7919 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.full((height, width), 255, np.uint8)
    plan = plan_tiles(height, width, ModelShape(128, 96), overlap)
    scaled_image, scaled_mask = scale_inputs(image, mask, plan)

    origins, tiles, _ = cut_tiles(scaled_image, scaled_mask, plan)
    stitched = stitch(np.zeros_like(scaled_image), plan, origins, tiles)

    assert np.array_equal(stitched, scaled_image)  # every pixel written, from the right tile


def test_restore_keeps_every_unmasked_pixel_bit_identical() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (900, 700, 3), dtype=np.uint8)
    mask = (rng.random((900, 700)) < 0.1).astype(np.uint8)
    plan = plan_tiles(900, 700, SHORT)
    scaled_image, _ = scale_inputs(image, mask, plan)
    filled = np.full_like(scaled_image, 7)

    out = restore(image, mask, plan, filled)

    assert out.shape == image.shape
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert np.all(out[mask == 1] == 7)


def test_an_empty_image_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        plan_tiles(0, 10, SHORT)


@settings(max_examples=300, deadline=None)
@given(width=st.integers(1, 10_000), height=st.integers(1, 30_000), is_long=st.booleans())
def test_tiles_of_every_admitted_image_form_one_row_or_column_within_the_inference_budget(
    width: int, height: int, is_long: bool
) -> None:
    assume(width * height <= 40_000_000 and max(width, height) <= 2000 * min(width, height))  # else refused
    plan = plan_tiles(height, width, LONG if is_long else SHORT)
    assert min(len(plan.rows), len(plan.cols)) == 1
    assert input_bytes(plan) <= MAX_INFERENCE_BYTES


@pytest.mark.parametrize(
    ("size", "tile", "needed"),
    [((30_000, 512), SHORT, 63 * 512 * 512 * 4), ((30_000, 386), LONG, 31 * 1024 * 384 * 4),
     ((5, 10_000), LONG, 29 * 1024 * 384 * 4), ((20_000, 790), LONG, 10 * 1024 * 384 * 4)],
)
def test_the_worst_admitted_images_need_at_most_half_the_default_budget(
    size: tuple[int, int], tile: ModelShape, needed: int
) -> None:
    assert input_bytes(plan_tiles(*size, tile)) == needed <= MAX_INFERENCE_BYTES // 2


async def test_an_image_whose_tiles_exceed_the_budget_is_refused_before_anything_is_sent() -> None:
    client = InpaintClient(InferenceConfig(), CollectorRegistry(), max_input_bytes=8 * 1024 * 1024)
    client._variants = {False: Variant("inpaint_short", SHORT, 8, asyncio.Semaphore(1))}  # never connected
    image, mask = np.zeros((5000, 512, 3), np.uint8), np.full((5000, 512), 255, np.uint8)

    with pytest.raises(InferenceInputTooLarge) as caught:
        await client.inpaint(image, mask, is_long=False)

    assert isinstance(caught.value, BadImage) and caught.value.tiles == 11
    assert str(caught.value) == (
        "an image of 512 x 5000 pixels (width x height) needs 11 tiles for inpaint_short (11.0 MiB), over the "
        "limit of 8388608 bytes (MILLSTREAM_MAX_INFERENCE_BYTES); send a smaller image or raise the limit"
    )
