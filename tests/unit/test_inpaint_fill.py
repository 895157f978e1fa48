"""The fill algorithm of triton_models/, run in-process on small tensors (torch, no server)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the triton extra")
REPOSITORY = Path(__file__).resolve().parents[2] / "triton_models"


@pytest.fixture(scope="module")
def fill() -> Iterator[ModuleType]:
    """Import inpaint_fill.py as the models do (its directory on sys.path), without
    writing a __pycache__/ into the model repository: Triton would read that
    directory as a model."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(REPOSITORY))
    try:
        yield importlib.import_module("inpaint_fill")
    finally:
        sys.path.remove(str(REPOSITORY))
        sys.dont_write_bytecode = previous


def run(fill: ModuleType, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = fill.inpaint(torch.from_numpy(images), torch.from_numpy(masks[..., None]))
    return np.asarray(out.numpy())


def boxes_mask(batch: int, size: int) -> np.ndarray:
    masks = np.zeros((batch, size, size), np.uint8)
    masks[:, 20:30, 10:50] = 255
    masks[:, 40:44, 5:60] = 255
    return masks


def test_a_flat_background_is_filled_exactly(fill: ModuleType) -> None:
    images = np.full((2, 64, 64, 3), (200, 40, 90), np.uint8)
    masks = boxes_mask(2, 64)
    images[masks > 0] = 0  # "text"

    out = run(fill, images, masks)

    assert np.array_equal(out, np.full_like(images, (200, 40, 90)))


def test_a_linear_gradient_is_filled_to_within_one_level(fill: ModuleType) -> None:
    ramp = np.linspace(20, 220, 64)
    clean = np.stack([np.broadcast_to(ramp, (64, 64))] * 3, -1).round().astype(np.uint8)[None]
    masks = boxes_mask(1, 64)
    images = clean.copy()
    images[masks > 0] = 255

    out = run(fill, images, masks)

    assert np.abs(out.astype(int) - clean).max() <= 1


def test_stripes_are_continued_through_the_hole(fill: ModuleType) -> None:
    x = np.arange(96)
    stripes = np.where((x // 6) % 2 == 0, 30, 220).astype(np.uint8)
    clean = np.stack([np.broadcast_to(stripes, (96, 96))] * 3, -1)[None]
    masks = boxes_mask(1, 96)
    images = clean.copy()
    images[masks > 0] = 128

    out = run(fill, images, masks)

    assert np.array_equal(out, clean)


def test_only_masked_pixels_change_and_each_image_of_a_batch_is_its_own(fill: ModuleType) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 48, 40, 3), dtype=np.uint8)
    masks = (rng.random((3, 48, 40)) < 0.2).astype(np.uint8) * 255
    masks[1] = 0  # nothing to remove in the second image

    out = run(fill, images, masks)
    alone = run(fill, images[2:], masks[2:])

    assert np.array_equal(out[masks == 0], images[masks == 0])
    assert np.array_equal(out[1], images[1])
    assert np.array_equal(out[2], alone[0])


def test_a_fully_masked_image_does_not_fail(fill: ModuleType) -> None:
    images = np.zeros((1, 32, 32, 3), np.uint8)
    masks = np.full((1, 32, 32), 255, np.uint8)

    out = run(fill, images, masks)

    assert out.shape == images.shape and out.dtype == np.uint8
