"""How well text was removed: PSNR inside the text boxes, and OpenCV's baselines.

PSNR is measured over the union of a sample's text boxes against its clean
background, capped at ``PSNR_CAP`` dB: a flat background filled exactly would
otherwise score infinity, and differences beyond the cap are invisible.
OpenCV is a dev/bench dependency only, so it is imported where the baselines run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from statistics import fmean
from typing import Any

import numpy as np

from processors.local.samples import Sample, Uint8

PSNR_CAP = 60.0
BASELINE_RADIUS = 3  # OpenCV's documented example radius for cv2.inpaint


def box_region(sample: Sample) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Boolean H x W map of the union of the sample's text boxes."""
    region = np.zeros(sample.mask.shape, dtype=bool)
    for x0, y0, x1, y1 in sample.boxes:
        region[y0:y1, x0:x1] = True
    return region


def box_psnr(result: Uint8, sample: Sample) -> float:
    """PSNR (dB, capped) of ``result`` against the clean background inside the text boxes."""
    region = box_region(sample)
    error = result[region].astype(np.float64) - sample.clean[region].astype(np.float64)
    mse = float(np.mean(error**2)) if error.size else 0.0
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * float(np.log10(255.0**2 / mse)))


def opencv_inpaint(sample: Sample, method: str) -> Uint8:
    """``cv2.inpaint`` of the sample with its own mask; ``method`` is "ns" or "telea"."""
    import cv2  # dev/bench only

    flag = {"ns": cv2.INPAINT_NS, "telea": cv2.INPAINT_TELEA}[method]
    bgr = np.ascontiguousarray(sample.image[..., ::-1])
    filled = cv2.inpaint(bgr, sample.mask, BASELINE_RADIUS, flag)
    return np.ascontiguousarray(filled[..., ::-1])


def psnr_table(
    samples: Sequence[Sample], methods: Mapping[str, Callable[[Sample], Uint8]]
) -> dict[str, dict[str, float]]:
    """Mean text-box PSNR per background kind (and "all") for each method."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, method in methods.items():
        for sample in samples:
            value = box_psnr(method(sample), sample)
            scores[name][sample.background].append(value)
            scores[name]["all"].append(value)
    return {name: {kind: fmean(v) for kind, v in by_kind.items()} for name, by_kind in scores.items()}


def format_table(table: Mapping[str, Mapping[str, float]], kinds: Iterable[str]) -> str:
    """A plain-text table: one row per method, one column per background kind."""
    kinds = list(kinds)
    width = max([6, *(len(name) for name in table)]) + 2
    lines = ["method".ljust(width) + "".join(f"{kind:>10}" for kind in kinds)]
    for name, by_kind in table.items():
        lines.append(
            name.ljust(width) + "".join(f"{by_kind.get(kind, float('nan')):>10.2f}" for kind in kinds)
        )
    return "\n".join(lines)
