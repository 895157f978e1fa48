"""Fit an image of any size to a model's fixed shape, and put the result back.

Preprocessing scales the image down (never up) until its shorter side, relative
to the model's, fits; the longer side is then cut into overlapping tiles of the
model's shape (a long product page becomes a column of tiles), the last one
padded by repeating the edge. Only tiles that hold masked pixels are sent.
Postprocessing stitches the tiles (each pixel from the tile whose centre is
nearest), scales back up, and keeps the original pixel wherever the mask is 0,
so the output equals the input bit for bit outside the mask.

The scale makes one side of the scaled image fit one tile (or leaves an image
alone that already fits on one side), so the tiles always form a single row or
a single column: their count grows with the long side only, and
``input_bytes`` bounds what a plan sends before any tile is cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

Uint8 = np.ndarray[Any, np.dtype[np.uint8]]


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The fixed input shape of a model: IMAGE is (height, width, 3)."""

    height: int
    width: int


@dataclass(frozen=True, slots=True)
class TilePlan:
    """Where the tiles of one image lie, in the coordinates of the scaled image."""

    size: tuple[int, int]  # original (height, width)
    scaled: tuple[int, int]  # scaled (height, width)
    rows: tuple[int, ...]  # top edge of each tile row
    cols: tuple[int, ...]  # left edge of each tile column
    tile: ModelShape


def _starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Tile origins that cover ``length`` evenly, neighbours overlapping >= overlap."""
    if length <= tile:
        return (0,)
    count = -(-(length - overlap) // (tile - overlap))
    return tuple(round(i * (length - tile) / (count - 1)) for i in range(count))


def plan_tiles(height: int, width: int, tile: ModelShape, overlap: int = 32) -> TilePlan:
    """Plan the scaling and tiling of a height x width image for ``tile``."""
    if height < 1 or width < 1:
        raise ValueError(f"empty image: {height}x{width}")
    if not 0 <= overlap < min(tile.height, tile.width):
        raise ValueError(f"overlap {overlap} must be in [0, {min(tile.height, tile.width)})")
    scale = min(1.0, max(tile.height / height, tile.width / width))
    scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
    return TilePlan(
        size=(height, width),
        scaled=scaled,
        rows=_starts(scaled[0], tile.height, overlap),
        cols=_starts(scaled[1], tile.width, overlap),
        tile=tile,
    )


def input_bytes(plan: TilePlan) -> int:
    """The bytes of every tile and tile mask ``plan`` could send (uint8 IMAGE and MASK)."""
    return len(plan.rows) * len(plan.cols) * plan.tile.height * plan.tile.width * 4


def _resize(array: Uint8, size: tuple[int, int], resample: Image.Resampling) -> Uint8:
    if array.shape[:2] == size:
        return array
    squeezed = array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array
    resized = np.asarray(Image.fromarray(squeezed).resize((size[1], size[0]), resample))
    return resized.reshape(size + array.shape[2:])


def scale_inputs(image: Uint8, mask: Uint8, plan: TilePlan) -> tuple[Uint8, Uint8]:
    """The image and mask (0/255) at the plan's scale. Area averaging for both: a
    scaled pixel is masked if any of its source pixels was, so no text leaks in."""
    scaled_image = _resize(image, plan.scaled, Image.Resampling.BOX)
    scaled_mask = _resize(mask, plan.scaled, Image.Resampling.BOX)
    return scaled_image, np.where(scaled_mask > 0, 255, 0).astype(np.uint8)


def _window(array: Uint8, top: int, left: int, tile: ModelShape) -> Uint8:
    part = array[top : top + tile.height, left : left + tile.width]
    pad = ((0, tile.height - part.shape[0]), (0, tile.width - part.shape[1]), (0, 0))
    return np.pad(part, pad, mode="edge") if any(p[1] for p in pad) else part


def cut_tiles(image: Uint8, mask: Uint8, plan: TilePlan) -> tuple[list[tuple[int, int]], Uint8, Uint8]:
    """Tiles (N,H,W,3) and their masks (N,H,W,1) that hold masked pixels, with their
    origins. Inputs are the scaled image (h,w,3) and mask (h,w) from scale_inputs."""
    origins, images, masks = [], [], []
    for top in plan.rows:
        for left in plan.cols:
            tile_mask = _window(mask[..., None], top, left, plan.tile)
            if tile_mask.any():
                origins.append((top, left))
                images.append(_window(image, top, left, plan.tile))
                masks.append(tile_mask)
    if not origins:
        empty = np.zeros((0, plan.tile.height, plan.tile.width, 1), np.uint8)
        return [], np.zeros((0, plan.tile.height, plan.tile.width, 3), np.uint8), empty
    return origins, np.stack(images), np.stack(masks)


def _owned(starts: tuple[int, ...], tile: int, length: int) -> list[tuple[int, int]]:
    """The span each tile writes: overlaps are split at their middle."""
    cuts = [0] + [(starts[i] + tile + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return [(cuts[i], min(cuts[i + 1], starts[i] + tile)) for i in range(len(starts))]


def stitch(scaled_image: Uint8, plan: TilePlan, origins: list[tuple[int, int]], filled: Uint8) -> Uint8:
    """The scaled image with each filled tile written over the span it owns."""
    out = scaled_image.copy()
    rows = dict(zip(plan.rows, _owned(plan.rows, plan.tile.height, plan.scaled[0]), strict=True))
    cols = dict(zip(plan.cols, _owned(plan.cols, plan.tile.width, plan.scaled[1]), strict=True))
    for (top, left), tile in zip(origins, filled, strict=True):
        (y0, y1), (x0, x1) = rows[top], cols[left]
        out[y0:y1, x0:x1] = tile[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def restore(image: Uint8, mask: Uint8, plan: TilePlan, filled_scaled: Uint8) -> Uint8:
    """Back to the original size; original pixels wherever ``mask`` (h,w) is 0."""
    filled = _resize(filled_scaled, plan.size, Image.Resampling.BILINEAR)
    return np.where(mask[..., None] > 0, filled, image)
