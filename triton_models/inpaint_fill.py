"""Text removal without learned weights: a batched torch fill of masked pixels.

With inpaint_pyramid.py (pull-push, harmonic fill) and inpaint_texture.py
(offsets, copies), shared by every model of this repository: each
``<model>/1/model.py`` puts this directory on ``sys.path``. They are files, not a
package directory, because Triton reads every sub-directory as a model.

The fill, for a batch of images at once:
1. smooth: coarse-to-fine harmonic interpolation. A pyramid of masked averages
   (pull) gives every hole a first value; at each finer level the known pixels
   stay fixed and Jacobi sweeps relax the hole toward the Laplace solution
   (push). The known pixels are lightly denoised first, so noise on the hole's
   rim is not smeared inward. Exact on flat and linear backgrounds.
2. texture: dominant offsets. Masked sums of squared differences for every
   shift (FFT correlations) give the few shifts under which the image repeats
   itself (stripes, tiles, weaves). A hole pixel copies the pixel one offset
   away when that offset predicts the known pixels around it better than the
   smooth fill would; elsewhere the smooth fill stays.
3. flat colours and edges (inpaint_edges.py): where the surround is flat the
   hole takes its colour; where an edge between flat regions crosses the hole
   each pixel takes the colour of its nearest flat neighbour, so the edge goes
   on instead of being blended into a smear.
Only masked pixels change.
"""

from __future__ import annotations

import torch
from inpaint_edges import flat_and_edge_fill
from inpaint_pyramid import masked_mean, smooth_fill
from inpaint_texture import smooth_error, texture_fill
from torch import Tensor


def inpaint(image: Tensor, mask: Tensor) -> Tensor:
    """Fill ``image`` (B,H,W,3 uint8) where ``mask`` (B,H,W,1 uint8) is non-zero.

    Returns a B,H,W,3 uint8 tensor equal to ``image`` wherever ``mask`` is zero.
    """
    hole = mask.permute(0, 3, 1, 2) > 0
    if not hole.any():
        return image.clone()
    x = image.permute(0, 3, 1, 2).float()
    known = (~hole).float()
    base = masked_mean(x, known, 1)
    smooth = smooth_fill(base, known)
    filled = texture_fill(x, known, smooth, smooth_error(x, base, known))
    # Pixels the texture step copied keep their copy: stripes are edges between flat
    # colours too, and a copy along the repeat continues them better than a nearest colour.
    copied = (filled != smooth).any(1, keepdim=True)
    filled = flat_and_edge_fill(x, known, filled, ~copied)
    out = torch.where(hole, filled.round().clamp(0, 255), x)
    return out.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
