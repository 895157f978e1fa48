"""The mask covers the glyphs of each OCR box (with a margin), not the whole box (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from processors.inference.inpaint_metrics import edge_fixture_set
from processors.stages.mask import build_mask, parse_ocr_result

EDGES = edge_fixture_set(count=6, shape=(256, 256), seed=3)


@pytest.mark.parametrize("edge", EDGES, ids=[e.sample.name for e in EDGES])
def test_the_glyph_mask_covers_the_ink_and_little_else_of_a_box_crossing_an_edge(edge) -> None:
    sample = edge.sample
    boxes = parse_ocr_result(sample.ocr_result())

    mask = build_mask(*sample.image.shape[:2], boxes, image=sample.image)

    touched = edge.glyphs  # every pixel the text changed, faint anti-aliasing included
    assert (mask[touched] > 0).mean() >= 0.99
    assert (mask > 0).sum() <= 0.6 * (sample.mask > 0).sum(), "a glyph mask, not a box mask"
    assert set(np.unique(mask).tolist()) == {0, 255}


def test_a_box_without_ink_is_masked_whole_and_without_an_image_boxes_are_masked() -> None:
    image = np.full((40, 80, 3), 120, np.uint8)  # the OCR saw text the pixels do not show
    boxes = parse_ocr_result([[[[10, 10], [50, 10], [50, 20], [10, 20]], ["包邮", 0.9]]])

    by_glyphs = build_mask(40, 80, boxes, dilation=2, image=image)
    by_boxes = build_mask(40, 80, boxes, dilation=2)

    assert np.array_equal(by_glyphs, by_boxes)
    rows, cols = (by_boxes > 0).nonzero()
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 22, 8, 52)


def test_an_image_of_another_size_than_the_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        build_mask(40, 80, [], image=np.zeros((41, 80, 3), np.uint8))
