"""Both text-removal models, served by the launcher's tritonserver, through the client."""

from __future__ import annotations

import numpy as np
import pytest

from processors.inference.client import InpaintClient
from processors.inference.server import TritonServer
from processors.local.samples import fixture_set, make_sample, product_image


async def test_both_models_are_loaded_and_ready(triton_server: TritonServer, client: InpaintClient) -> None:
    assert await client.ready()
    assert client.variant(False).model == "inpaint_short"
    assert client.variant(True).model == "inpaint_long"
    assert (client.variant(False).shape.height, client.variant(False).shape.width) == (512, 512)
    assert (client.variant(True).shape.height, client.variant(True).shape.width) == (1024, 384)


@pytest.mark.parametrize("is_long", [False, True])
async def test_a_model_changes_only_masked_pixels_of_a_batch(client: InpaintClient, is_long: bool) -> None:
    variant = client.variant(is_long)
    shape = (variant.shape.height, variant.shape.width)
    samples = fixture_set(per_background=1, shape=shape, seed=3)[:3]
    images = np.stack([s.image for s in samples])
    masks = np.stack([s.mask for s in samples])[..., None]

    filled = await client.infer(variant, images, masks)

    assert filled.shape == images.shape and filled.dtype == np.uint8
    unmasked = masks[..., 0] == 0
    assert np.array_equal(filled[unmasked], images[unmasked])
    assert not np.array_equal(filled[~unmasked], images[~unmasked])


@pytest.mark.parametrize(
    ("is_long", "height", "width"),
    [
        (False, 800, 800),  # scaled down to one tile
        (False, 300, 200),  # smaller than the model: padded
        (False, 512, 512),  # exactly the model's shape
        (False, 400, 1300),  # wide: tiles side by side
        (True, 2250, 750),  # a long detail page: a column of tiles
    ],
)
async def test_inpaint_returns_the_input_shape_and_keeps_unmasked_pixels_bit_identical(
    client: InpaintClient, is_long: bool, height: int, width: int
) -> None:
    rng = np.random.default_rng(height * width)
    sample = make_sample("gradient", rng, shape=(height, width), mask_kind="box", lines=4)

    out = await client.inpaint(sample.image, sample.mask, is_long)

    assert out.shape == sample.image.shape and out.dtype == np.uint8
    keep = sample.mask == 0
    assert np.array_equal(out[keep], sample.image[keep])
    error_before = np.abs(sample.image.astype(int) - sample.clean)[~keep].mean()
    error_after = np.abs(out.astype(int) - sample.clean)[~keep].mean()
    assert error_after < error_before / 4  # the text is gone, not copied back


async def test_an_image_without_mask_comes_back_unchanged_without_a_call(client: InpaintClient) -> None:
    sample = product_image(is_long=False, seed=1)

    out = await client.inpaint(sample.image, np.zeros(sample.mask.shape, np.uint8), False)

    assert np.array_equal(out, sample.image)
