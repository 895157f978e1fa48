"""Flat surrounds and edges between flat colours, and the edge fixtures against OpenCV
(the models' torch code in-process, no Triton server; the served path is tested in
tests/integration/triton/)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from statistics import fmean
from types import ModuleType

import numpy as np
import pytest

from processors.inference.inpaint_metrics import box_psnr, edge_error, edge_fixture_set, opencv_fill
from processors.stages.mask import build_mask, parse_ocr_result

torch = pytest.importorskip("torch", reason="torch comes with the triton extra")
pytest.importorskip("cv2", reason="opencv-python comes with the dev extra")
REPOSITORY = Path(__file__).resolve().parents[2] / "triton_models"


@pytest.fixture(scope="module")
def fill() -> Iterator[ModuleType]:
    """inpaint_fill.py imported as the models do, writing no __pycache__/ into the repository."""
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
        return np.asarray(fill.inpaint(torch.from_numpy(images), torch.from_numpy(masks[..., None])).numpy())


def test_a_stroke_across_the_edge_of_two_flat_colours_continues_the_edge(fill: ModuleType) -> None:
    clean = np.zeros((1, 64, 64, 3), np.uint8)
    clean[:, :, :32] = (40, 60, 200)
    clean[:, :, 32:] = (230, 220, 90)
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[:, 28:34, 12:52] = 255  # a horizontal stroke crossing the vertical edge
    images = clean.copy()
    images[masks > 0] = 0

    out = run(fill, images, masks)

    assert np.array_equal(out, clean), "each side keeps its colour up to the edge: no blend"


def test_a_flat_surround_is_filled_with_its_colour_despite_residue_on_the_rim(fill: ModuleType) -> None:
    clean = np.full((1, 64, 64, 3), (200, 40, 90), np.uint8)
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[:, 20:30, 10:50] = 255
    images = clean.copy()
    images[masks > 0] = 0
    images[:, 19, 10:50] = (150, 30, 70)  # an anti-aliased fringe the mask missed

    out = run(fill, images, masks)

    assert np.array_equal(out[masks > 0], clean[masks > 0])


EDGES = edge_fixture_set(count=6, shape=(256, 256), seed=5)


@pytest.fixture(scope="module")
def scores(fill: ModuleType) -> dict[str, tuple[float, float]]:
    """Mean (in-box PSNR, edge error) per method, every method given the same glyph masks
    (processors/stages/mask.py from the image and its OCR boxes)."""
    masks = [
        build_mask(*e.sample.image.shape[:2], parse_ocr_result(e.sample.ocr_result()), image=e.sample.image)
        for e in EDGES
    ]
    ours = run(fill, np.stack([e.sample.image for e in EDGES]), np.stack(masks))
    outputs = {
        "ours": list(ours),
        "ns": [opencv_fill(e.sample.image, m, "ns") for e, m in zip(EDGES, masks, strict=True)],
        "telea": [opencv_fill(e.sample.image, m, "telea") for e, m in zip(EDGES, masks, strict=True)],
    }
    return {
        name: (
            fmean(box_psnr(o, e.sample) for o, e in zip(out, EDGES, strict=True)),
            fmean(edge_error(o, e) for o, e in zip(out, EDGES, strict=True)),
        )
        for name, out in outputs.items()
    }


@pytest.mark.xfail(strict=True, reason="issue #17 point 3 not met yet: on these fixtures (seed 5) the in-box PSNR is "
                   "~28.3 dB for ours against ~29.6 (NS) and ~30.1 (TELEA)")
def test_on_text_crossing_object_edges_the_in_box_psnr_beats_opencv_ns_and_telea(scores) -> None:
    assert scores["ours"][0] > scores["ns"][0], scores
    assert scores["ours"][0] > scores["telea"][0], scores


@pytest.mark.xfail(strict=True, reason="issue #17 point 3 not met yet: the edge error (RMS, outside the "
                   "glyphs, near the object's edge) is ~22.4 for ours against ~18.7 (NS) and ~17.7 (TELEA)")
def test_on_text_crossing_object_edges_the_edge_error_beats_opencv_ns_and_telea(scores) -> None:
    assert scores["ours"][1] < scores["ns"][1], scores
    assert scores["ours"][1] < scores["telea"][1], scores
