"""Flat colours and the edges between them: the last step of the fill.

Part of the text-removal models (see inpaint_fill.py); plain torch, batched.

Product images are mostly flat colours (a backdrop, an object) with sharp edges
between them. A harmonic or texture fill of a glyph that crosses such an edge
blends the two colours: a smear of the object's colour on the backdrop. Here
each hole pixel looks for the nearest *flat* known pixel (one whose 3x3 known
neighbours all share its colour) in each of the four axis directions:
- if those candidates agree closely, the surround is flat: the pixel takes its
  colour (so rim residue or noise cannot tint a flat fill);
- if they disagree, an edge passes through the hole: the pixel takes the
  colour of the nearest candidate, which continues a straight edge across a
  thin stroke instead of blending across it;
- if they agree only roughly (a gradient), the earlier fill stays.
Only where flat pixels dominate the neighbourhood: on noise and textures the
earlier fill stays too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from inpaint_pyramid import masked_mean
from torch import Tensor

FLAT = 3.0  # a pixel is flat when its 3x3 known neighbours are within this (max over channels)
SAME = 4.0  # candidates within this of each other: a flat surround
APART = 40.0  # candidates further apart than this: an edge between flat regions
REACH = 24  # candidates further than this are ignored
DOMINANT = 0.6  # share of flat pixels among the known ones nearby that enables the step
NEAR = 8  # radius of that neighbourhood


def flat_pixels(x: Tensor, known: Tensor) -> Tensor:
    """(B,1,H,W) bool: known pixels whose known 3x3 neighbours all lie within FLAT of them."""
    hole = known <= 0
    high = F.max_pool2d(x.masked_fill(hole, -1e4), 3, stride=1, padding=1)
    low = -F.max_pool2d((-x).masked_fill(hole, -1e4), 3, stride=1, padding=1)
    return ~hole & ((high - x).amax(1, keepdim=True) <= FLAT) & ((x - low).amax(1, keepdim=True) <= FLAT)


def _nearest_along(x: Tensor, flat: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """For every pixel, the colour of the last flat pixel at or before it along ``dim``
    (3: rows, left to right; 2: columns, top to bottom), and its distance (inf if none)."""
    size = x.shape[dim]
    shape = [1, 1, 1, 1]
    shape[dim] = size
    position = torch.arange(size, device=x.device).view(shape).expand_as(flat)
    last = torch.where(flat, position, -1).cummax(dim).values
    distance = torch.where(last >= 0, position - last, size * 4).float()
    colour = x.gather(dim, last.clamp_min(0).expand(-1, x.shape[1], -1, -1))
    return colour, distance


def _candidates(x: Tensor, flat: Tensor) -> tuple[Tensor, Tensor]:
    """(B,4,C,H,W) colours and (B,4,1,H,W) distances of the nearest flat pixel to the
    left, right, above and below each pixel."""
    colours, distances = [], []
    for dim in (3, 2):
        for flip in (False, True):
            xs, fs = (x.flip(dim), flat.flip(dim)) if flip else (x, flat)
            colour, distance = _nearest_along(xs, fs, dim)
            if flip:
                colour, distance = colour.flip(dim), distance.flip(dim)
            colours.append(colour)
            distances.append(distance)
    return torch.stack(colours, 1), torch.stack(distances, 1)


def flat_and_edge_fill(x: Tensor, known: Tensor, filled: Tensor, free: Tensor) -> Tensor:
    """``filled`` with its hole pixels where ``free`` holds replaced where the surround is flat or an edge
    between flat regions (module docstring)."""
    hole = known <= 0
    flat = flat_pixels(x, known)
    colours, distances = _candidates(x, flat)
    valid = distances <= REACH
    count = valid.sum(1)
    big = torch.where(valid, colours, -1e4).amax(1)
    small = torch.where(valid, colours, 1e4).amin(1)
    spread = (big - small).amax(1, keepdim=True)
    mean = (colours * valid).sum(1) / count.clamp_min(1)
    nearest = distances.masked_fill(~valid, float("inf")).argmin(1, keepdim=True)
    index = nearest.expand(-1, -1, x.shape[1], -1, -1)
    closest = colours.gather(1, index).squeeze(1)
    dominant = masked_mean(flat.float(), known, NEAR) >= DOMINANT
    usable = hole & free & dominant & (count >= 2)
    out = torch.where(usable & (spread <= SAME), mean, filled)
    return torch.where(usable & (spread > APART), closest, out)
