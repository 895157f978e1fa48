"""Task validation messages and the banding of tall images for OCR (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from processors.stages.ocr import BAND, OVERLAP, bands, keep
from processors.stages.task import TranslateTask
from streams.errors import InvalidPayload

GOOD = {"request_id": "r1", "image_url": "http://x/a.png", "image_id": "i1", "is_long": False}


def test_a_good_task_is_accepted_and_extra_fields_are_ignored() -> None:
    assert TranslateTask.from_payload({**GOOD, "extra": 1}).as_payload() == GOOD


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "image_url"}, "missing field 'image_url'"),
        ({**GOOD, "is_long": "yes"}, "field 'is_long' must be a boolean, got string"),
        ({**GOOD, "request_id": 7}, "field 'request_id' must be a string, got number"),
        ({**GOOD, "is_long": 1}, "field 'is_long' must be a boolean, got number"),
        ({}, "missing field 'request_id'; missing field 'image_url'"),
    ],
)
def test_invalid_tasks_name_every_problem(payload, message) -> None:
    with pytest.raises(InvalidPayload, match=message) as raised:
        TranslateTask.from_payload(payload)
    assert "a task is {request_id: string" in str(raised.value)


def test_short_images_are_read_whole_and_tall_ones_in_overlapping_bands() -> None:
    assert bands(800, 800) == [(0, 800)]
    tall = bands(20_000, 790)
    assert tall[0] == (0, BAND) and tall[-1][1] == 20_000
    assert all(b[0] == a[1] - OVERLAP for a, b in itertools.pairwise(tall))


def test_each_box_in_an_overlap_belongs_to_exactly_one_band() -> None:
    height = 5000
    spans = bands(height, 500)
    for centre in range(0, height, 7):
        box = [[[0, centre], [1, centre], [1, centre], [0, centre]], ["t", 1.0]]
        owners = [span for span in spans if span[0] <= centre < span[1] and keep(box, *span, height)]
        assert len(owners) == 1, f"centre {centre} owned by {owners}"
