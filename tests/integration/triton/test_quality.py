"""The models remove text at least as well as OpenCV's inpainting, on a fixture subset."""

from __future__ import annotations

import numpy as np
import pytest

from processors.inference.client import InpaintClient
from processors.inference.inpaint_metrics import opencv_inpaint, psnr_table
from processors.local.samples import MaskKind, fixture_set

pytest.importorskip("cv2", reason="opencv-python-headless comes with the dev extra")


@pytest.mark.parametrize("mask_kind", ["glyph", "box"])
async def test_text_box_psnr_beats_opencv_ns_and_telea(client: InpaintClient, mask_kind: MaskKind) -> None:
    samples = fixture_set(per_background=2, mask_kind=mask_kind, seed=21)
    variant = client.variant(False)
    filled = await client.infer(
        variant, np.stack([s.image for s in samples]), np.stack([s.mask for s in samples])[..., None]
    )
    ours = {s.name: out for s, out in zip(samples, filled, strict=True)}

    table = psnr_table(
        samples,
        {
            "ours": lambda s: ours[s.name],
            "ns": lambda s: opencv_inpaint(s, "ns"),
            "telea": lambda s: opencv_inpaint(s, "telea"),
        },
    )

    assert table["ours"]["all"] >= table["ns"]["all"]
    assert table["ours"]["all"] > table["telea"]["all"]
    for kind in ("flat", "gradient", "noisy", "striped", "textured"):
        assert table["ours"][kind] >= table["ns"][kind], (kind, table)
