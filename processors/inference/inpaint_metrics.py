"""How well text was removed: PSNR inside the text boxes, and OpenCV's baselines.

PSNR is measured over the union of a sample's text boxes against its clean
background, capped at ``PSNR_CAP`` dB: a flat background filled exactly would
otherwise score infinity, and differences beyond the cap are invisible.
OpenCV is a dev/bench dependency only, so it is imported where the baselines run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from processors.local.samples import BACKGROUNDS, PHRASES, Box, Float, Sample, Uint8, draw_text, find_cjk_font

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
    return opencv_fill(sample.image, sample.mask, method)


def opencv_fill(image: Uint8, mask: Uint8, method: str) -> Uint8:
    """``cv2.inpaint`` of an RGB ``image`` where ``mask`` (H,W) is non-zero."""
    import cv2  # dev/bench only

    flag = {"ns": cv2.INPAINT_NS, "telea": cv2.INPAINT_TELEA}[method]
    bgr = np.ascontiguousarray(image[..., ::-1])
    filled = cv2.inpaint(bgr, np.ascontiguousarray(mask), BASELINE_RADIUS, flag)
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


# --- Edges: text that crosses an object's edge -------------------------------------------

EDGE_BAND = 3  # pixels either side of an object's edge that the edge error looks at


@dataclass(frozen=True, slots=True)
class EdgeSample:
    """A sample whose text crosses the edge of an object, with what the edge error needs."""

    sample: Sample
    glyphs: np.ndarray[Any, np.dtype[np.bool_]]  # every pixel the text touched
    band: np.ndarray[Any, np.dtype[np.bool_]]  # within EDGE_BAND of the object's edge


def _object(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray[Any, Any], Float]:
    """A product-like shape (box, rounded box or ellipse) and its fill (flat or gradient)."""
    y0, x0 = int(rng.integers(h // 8, h // 3)), int(rng.integers(w // 8, w // 3))
    y1, x1 = int(rng.integers(2 * h // 3, 7 * h // 8)), int(rng.integers(2 * w // 3, 7 * w // 8))
    shape = Image.new("L", (w, h), 0)
    pen = ImageDraw.Draw(shape)
    kind = int(rng.integers(3))
    if kind == 0:
        pen.rectangle((x0, y0, x1, y1), fill=255)
    elif kind == 1:
        pen.rounded_rectangle((x0, y0, x1, y1), radius=min(x1 - x0, y1 - y0) // 5, fill=255)
    else:
        pen.ellipse((x0, y0, x1, y1), fill=255)
    fill = BACKGROUNDS["gradient" if rng.random() < 0.5 else "flat"](rng, h, w)
    return np.asarray(shape) > 127, fill


def _edge_layout(
    rng: np.random.Generator, inside: np.ndarray[Any, Any], lines: int
) -> list[tuple[Box, str, ImageFont.FreeTypeFont]]:
    """Phrases placed so that each box holds both object and background pixels."""
    h, w = inside.shape
    font_path = find_cjk_font()
    placed: list[tuple[Box, str, ImageFont.FreeTypeFont]] = []
    for _ in range(lines * 50):
        if len(placed) == lines:
            break
        text = str(rng.choice(PHRASES))
        font = ImageFont.truetype(str(font_path), int(rng.integers(max(14, w // 20), w // 9 + 10)))
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        if right - left > w - 16 or bottom - top > h - 16:
            continue
        x = int(rng.integers(8, w - (right - left) - 7))
        y = int(rng.integers(8, h - (bottom - top) - 7))
        box = (x - 4, y - 4, x + right - left + 4, y + bottom - top + 4)
        share = inside[box[1] : box[3], box[0] : box[2]].mean()
        if not 0.2 < share < 0.8 or any(_overlaps(box, other) for other, _, _ in placed):
            continue
        placed.append((box, text, font))
    return placed


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _near_edge(inside: np.ndarray[Any, Any], band: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Pixels within ``band`` of a pixel whose 4-neighbour lies on the other side."""
    edge = np.zeros_like(inside)
    edge[:-1] |= inside[:-1] != inside[1:]
    edge[1:] |= inside[:-1] != inside[1:]
    edge[:, :-1] |= inside[:, :-1] != inside[:, 1:]
    edge[:, 1:] |= inside[:, :-1] != inside[:, 1:]
    grown = Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * band + 1))
    return np.asarray(grown) > 0


def edge_sample(rng: np.random.Generator, shape: tuple[int, int] = (512, 512), name: str = "edge",
                lines: int = 4) -> EdgeSample:
    """A backdrop (flat or gradient), an object on it, and text crossing the object's edge.

    The sample's ``mask`` is the box mask (OCR boxes); the glyph mask under test comes
    from processors/stages/mask.py, given the image and the boxes.
    """
    h, w = shape
    background = "gradient" if rng.random() < 0.5 else "flat"
    inside, fill = _object(rng, h, w)
    backdrop = BACKGROUNDS[background](rng, h, w)
    # The object's outline is anti-aliased, as a photographed or rendered product's is.
    outline = Image.fromarray(inside.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(0.7))
    cover = np.asarray(outline, dtype=np.float64)[..., None] / 255.0
    clean = np.clip(np.rint(fill * cover + backdrop * (1 - cover)), 0, 255).astype(np.uint8)
    layout = _edge_layout(rng, inside, lines)
    image, glyphs = draw_text(clean, layout, rng, "glyph", dilate=0)
    boxes = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in (box for box, _, _ in layout):
        boxes[y0:y1, x0:x1] = 255
    sample = Sample(name=name, background=f"edge-{background}", image=image, clean=clean, mask=boxes,
                    boxes=tuple(box for box, _, _ in layout), texts=tuple(text for _, text, _ in layout))
    return EdgeSample(sample, glyphs > 0, _near_edge(inside, EDGE_BAND))


def edge_fixture_set(count: int = 8, shape: tuple[int, int] = (512, 512), seed: int = 0) -> list[EdgeSample]:
    """``count`` edge samples, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    return [edge_sample(rng, shape, name=f"edge-{index}") for index in range(count)]


def edge_error(result: Uint8, edge: EdgeSample) -> float:
    """RMS error against the clean image over the pixels of the text boxes that are
    near the object's edge but outside the glyphs: the smear a fill leaves on an edge."""
    region = box_region(edge.sample) & edge.band & ~edge.glyphs
    diff = result[region].astype(np.float64) - edge.sample.clean[region].astype(np.float64)
    return float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0
