"""Pyramids for the fill: pull-push spreading of sparse values, and the harmonic fill.

Part of the text-removal models (see inpaint_fill.py); plain torch, batched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SPREAD_LEVEL = 2  # spread() averages over blocks of at least 4x4 pixels
SPREAD_BLOCK = 2**SPREAD_LEVEL


def _box(x: Tensor, radius: int) -> Tensor:
    """Mean over a (2r+1)^2 window, separable; borders average what is inside."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def grow(mask: Tensor, radius: int) -> Tensor:
    """Dilate a 0/1 map by ``radius`` pixels (separable square max filter)."""
    k = 2 * radius + 1
    mask = F.max_pool2d(mask, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(mask, (k, 1), stride=1, padding=(radius, 0))


def masked_mean(x: Tensor, weight: Tensor, radius: int) -> Tensor:
    return _box(x * weight, radius) / _box(weight, radius).clamp_min(1e-6)


def _pull(x: Tensor, weight: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Pyramid of (weighted mean, mean weight), finest first, down to a few pixels."""
    levels = [(x, weight)]
    while min(levels[-1][0].shape[-2:]) > 4:
        v, w = levels[-1]
        coarse = F.avg_pool2d(w, 2, ceil_mode=True)
        total = F.avg_pool2d(v * w, 2, ceil_mode=True)
        levels.append((total / coarse.clamp_min(1e-6), coarse))
    return levels


def _coarsest(levels: list[tuple[Tensor, Tensor]]) -> Tensor:
    v, w = levels[-1]
    mean = (v * w).sum((-2, -1), keepdim=True) / w.sum((-2, -1), keepdim=True).clamp_min(1e-6)
    return torch.where(w > 0, v, mean)


def _push(levels: list[Tensor], weights: list[Tensor], finest: int, enough: float) -> Tensor:
    """Coarse-to-fine: each level keeps its own value where its weight is ``enough``
    and takes the upsampled coarser value elsewhere; returned at level ``finest``."""
    out = levels[-1]
    for depth in range(len(levels) - 2, finest - 1, -1):
        up = F.interpolate(out, size=levels[depth].shape[-2:], mode="bilinear", align_corners=False)
        out = torch.where(weights[depth] >= enough, levels[depth], up)
    return out


def spread(value: Tensor, weight: Tensor, enough: float = 0.25) -> Tensor:
    """Weighted local mean of ``value`` around every pixel, over blocks of at least
    SPREAD_BLOCK pixels a side, from the finest such block with ``enough`` weight.
    Returned at 1/SPREAD_BLOCK of the size: only hole pixels read it (``_copy``)."""
    levels = _pull(value, weight)
    means = [v for v, _ in levels[:-1]] + [_coarsest(levels)]
    return _push(means, [w for _, w in levels], SPREAD_LEVEL, enough)


def pixels(free: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Flat indices (over B*H*W) of the pixels where ``free`` (B,1,H,W) holds, and
    their image, row and column."""
    h, w = free.shape[-2:]
    index = free.flatten().nonzero().squeeze(1)
    return index, index // (h * w), (index // w) % h, index % w


def channels_last(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).clone()


def _relax(u: Tensor, free: Tensor, sweeps: int) -> Tensor:
    """Jacobi sweeps toward the discrete Laplace equation at the ``free`` pixels only
    (a few per cent of an image), by gathering their four neighbours; image borders
    mirror (replicate) so that the normal derivative there is zero."""
    b, c, h, w = u.shape
    index, _, y, x = pixels(free)
    if sweeps == 0 or index.numel() == 0:
        return u
    row = index - y * w - x
    neighbours = torch.stack(
        (
            row + (y - 1).clamp_min(0) * w + x,
            row + (y + 1).clamp_max(h - 1) * w + x,
            row + y * w + (x - 1).clamp_min(0),
            row + y * w + (x + 1).clamp_max(w - 1),
        )
    )
    flat, gather = channels_last(u), neighbours.flatten()
    for _ in range(sweeps):
        around = flat.index_select(0, gather).view(4, -1, c).sum(0)
        flat.index_copy_(0, index, around.mul_(0.25))
    return flat.view(b, h, w, c).permute(0, 3, 1, 2)


def smooth_fill(x: Tensor, known: Tensor, sweeps: tuple[int, int] = (16, 40)) -> Tensor:
    """Harmonic fill of the unknown pixels of ``x`` (B,C,H,W) given ``known`` (B,1,H,W).

    Coarse to fine: each level starts from the upsampled coarser solution, keeps
    its fully known pixels and relaxes the others with Jacobi sweeps: ``sweeps[0]``
    at full size (its start is already close), ``sweeps[1]`` at every coarser level.
    """
    levels = _pull(x, known)
    solution = _coarsest(levels)
    for depth in range(len(levels) - 1, -1, -1):
        v, k = levels[depth]
        init = F.interpolate(solution, size=v.shape[-2:], mode="bilinear", align_corners=False)
        fixed = k > 0.999
        solution = _relax(torch.where(fixed, v, init), ~fixed, sweeps[min(depth, 1)])
    return solution
