"""The texture step of the fill: dominant offsets, and copies along them.

Part of the text-removal models (see inpaint_fill.py); plain torch, batched.
"""

from __future__ import annotations

import torch
from inpaint_pyramid import SPREAD_BLOCK, channels_last, grow, pixels, smooth_fill, spread
from torch import Tensor

INF = float("inf")


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFTs of such sizes are several times faster."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _principal(x: Tensor, known: Tensor) -> Tensor:
    """Known pixels projected on their first principal colour axis, centred, /255."""
    b, c = x.shape[:2]
    count = known.sum((-2, -1), keepdim=True).clamp_min(1.0)
    centred = (x - (x * known).sum((-2, -1), keepdim=True) / count) * known / 255
    flat = centred.flatten(2)
    covariance = flat @ flat.transpose(1, 2) + 1e-6 * torch.eye(c, device=x.device)
    axis = torch.linalg.eigh(covariance).eigenvectors[..., -1]
    return (axis.view(b, 1, c) @ flat).view(b, 1, *x.shape[-2:])


def _correlate(a: Tensor, b: Tensor, size: tuple[int, int]) -> Tensor:
    """sum_p a(p) b(p + d) for every shift d, as a (B,1,size) map indexed by d mod size."""
    spectrum = torch.fft.rfft2(a, s=size).conj() * torch.fft.rfft2(b, s=size)
    return torch.fft.irfft2(spectrum, s=size)


def offset_errors(x: Tensor, known: Tensor, ring: Tensor, max_shift: int) -> Tensor:
    """Mean squared difference between ring pixels p and known pixels p+d, for
    every |d| <= max_shift: a (B, 2m+1, 2m+1) map centred on d = 0 (inf where
    too few pairs overlap)."""
    h, w = x.shape[-2:]
    size = (_fft_size(h + max_shift), _fft_size(w + max_shift))
    luma = _principal(x, known)
    square = luma**2
    pairs = _correlate(ring, known, size)
    ssd = (
        _correlate(ring * square, known, size)
        + _correlate(ring, known * square, size)
        - 2 * _correlate(ring * luma, known * luma, size)
    )
    shifts = torch.arange(-max_shift, max_shift + 1, device=x.device)
    rows, cols = shifts % size[0], shifts % size[1]
    pairs = pairs[:, 0][:, rows][:, :, cols]
    error = ssd[:, 0][:, rows][:, :, cols] / pairs.clamp_min(1.0)
    enough = pairs >= 0.25 * pairs[:, max_shift : max_shift + 1, max_shift : max_shift + 1]
    return torch.where(enough, error, INF)


def pick_offsets(error: Tensor, count: int, min_shift: int, spacing: int, sectors: int = 8) -> Tensor:
    """Greedily take ``count`` good shifts (B,count,2), at least ``spacing`` apart:
    first the best of each of ``sectors`` directions, so that every hole pixel has
    sources on all sides (a valley of equally good shifts, as stripes give, would
    otherwise yield candidates all pointing one way), then the best of the rest.
    Exact ties go to the shorter shift."""
    m = error.shape[-1] // 2
    shifts = torch.arange(-m, m + 1, device=error.device)
    dy, dx = torch.meshgrid(shifts, shifts, indexing="ij")
    length = dy.abs().maximum(dx.abs())
    error = torch.where(length >= min_shift, error + 1e-7 * length, INF).flatten(1)
    angle = torch.atan2(dy.float(), dx.float()).flatten() + torch.pi
    sector = (angle / (2 * torch.pi / sectors)).long().clamp_max(sectors - 1)
    dy, dx = dy.flatten(), dx.flatten()
    picked = []
    for i in range(count):
        pool = torch.where(sector == i, error, INF) if i < sectors else error
        best, index = pool.min(1)
        index = torch.where(torch.isinf(best), error.argmin(1), index)
        py, px = dy[index], dx[index]
        picked.append(torch.stack((py, px), -1))
        near = ((dy - py[:, None]).abs() < spacing) & ((dx - px[:, None]).abs() < spacing)
        error = torch.where(near, INF, error)
    return torch.stack(picked, 1)


def _shift(x: Tensor, offsets: Tensor) -> Tensor:
    """x(p + offsets[b]) for every p of every image b; zero where p + d is outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for b, (dy, dx) in enumerate(offsets.tolist()):
        if abs(dy) >= h or abs(dx) >= w:
            continue  # nothing of the image lands inside it
        ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
        xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
        out[b, :, yd, xd] = x[b, :, ys, xs]
    return out


def smooth_error(x: Tensor, base: Tensor, known: Tensor, band: int = 3) -> Tensor:
    """What the smooth fill gets wrong near each hole pixel, by cross-validation:
    fill again with the hole grown by ``band`` pixels and measure the error on the
    band (so trends the fill reproduces cost nothing; noise and texture do)."""
    grown = grow(1 - known, band)
    probe = smooth_fill(base, 1 - grown, sweeps=(8, 20))
    removed = grown * known
    return spread(((x - probe) ** 2).mean(1, keepdim=True), removed)


def _candidate_errors(x: Tensor, known: Tensor, ring: Tensor, offsets: Tensor) -> Tensor:
    """For each candidate offset (B,K,H/4,W/4): how badly copying from p+d predicts
    the ring pixels near p, spread from the ring into the hole."""
    errors = []
    with_known = torch.cat((x, known), 1)
    for k in range(offsets.shape[1]):
        source = _shift(with_known, offsets[:, k])
        diff = ((x - source[:, :-1]) ** 2).mean(1, keepdim=True)
        errors.append(spread(diff, ring * source[:, -1:]))
    return torch.cat(errors, 1)


def texture_fill(
    x: Tensor,
    known: Tensor,
    smooth: Tensor,
    smooth_errors: Tensor,
    max_shift: int = 96,
    count: int = 12,
    ring_width: int = 12,
    margin: float = 0.5,
    passes: int = 3,
) -> Tensor:
    """Replace smooth-filled hole pixels by shifted copies where the image repeats.

    Offsets are judged on the ring of known pixels within ``ring_width`` of a
    hole; a copy is taken where its error is under ``margin`` times the smooth
    fill's. A copy's source must be known, or copied in an earlier pass: so
    ``passes`` rounds reach the parts of a wide hole that no single offset reaches.
    """
    ring = grow(1 - known, ring_width) * known
    max_shift = max(1, min(max_shift, min(x.shape[-2:]) // 2))
    errors_by_shift = offset_errors(x, known, ring, max_shift)
    # Shifts under 3 px mostly land in the same stroke; 6 px apart keeps them distinct.
    offsets = pick_offsets(errors_by_shift, count, min_shift=3, spacing=6)
    errors = _candidate_errors(x, known, ring, offsets)
    return _copy(x, known, offsets, errors, margin * smooth_errors, passes, smooth)


def _copy(
    x: Tensor, known: Tensor, offsets: Tensor, errors: Tensor, threshold: Tensor, passes: int, smooth: Tensor
) -> Tensor:
    """Copy into each hole pixel from its best available candidate offset, when that
    candidate's error is under ``threshold``; keep ``smooth`` elsewhere. Works on the
    hole pixels only."""
    b, c, h, w = x.shape
    index, image, y, col = pixels(known == 0)
    dy, dx = offsets[image, :, 0], offsets[image, :, 1]
    sy, sx = y[:, None] + dy, col[:, None] + dx
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    source = image[:, None] * h * w + sy.clamp(0, h - 1) * w + sx.clamp(0, w - 1)
    error = errors[image, :, y // SPREAD_BLOCK, col // SPREAD_BLOCK]
    limit = threshold[image, 0, y // SPREAD_BLOCK, col // SPREAD_BLOCK]
    value, available = channels_last(x), known.flatten() > 0
    # A pixel waits for a later pass while a clearly better candidate's source is
    # still a hole (it may be copied in meanwhile); the last pass takes what it can.
    patience = 2 * torch.where(inside, error, INF).min(1).values + 1.0
    for round_ in range(passes):
        best, choice = torch.where(inside & available[source], error, INF).min(1)
        take = ~available[index] & (best < limit)
        if round_ < passes - 1:
            take &= best <= patience
        value[index[take]] = value[source.gather(1, choice[:, None]).squeeze(1)[take]]
        available[index[take]] = True
    copied = value.view(b, h, w, c).permute(0, 3, 1, 2)
    return torch.where(available.view(b, 1, h, w), copied, smooth)
