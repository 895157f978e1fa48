"""The model repository's configs agree with each other (the GPU variant cannot run here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2] / "triton_models"
MODELS = {"inpaint_short": (512, 512), "inpaint_long": (1024, 384)}


def fields(text: str) -> dict[str, object]:
    return {
        "name": re.search(r'^name: "(\w+)"', text, re.M).group(1),  # type: ignore[union-attr]
        "dims": re.findall(r"dims: \[ ([\d, ]+) \]", text),
        "kind": re.search(r"kind: (KIND_\w+)", text).group(1),  # type: ignore[union-attr]
        "max_batch_size": int(re.search(r"max_batch_size: (\d+)", text).group(1)),  # type: ignore[union-attr]
        "queue_delay": int(re.search(r"max_queue_delay_microseconds: (\d+)", text).group(1)),  # type: ignore[union-attr]
        "queue_size": int(re.search(r"max_queue_size: (\d+)", text).group(1)),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize("model", sorted(MODELS))
def test_each_model_has_a_cpu_default_and_a_gpu_alternate_of_the_same_shapes(model: str) -> None:
    cpu = fields((REPOSITORY / model / "config.pbtxt").read_text())
    gpu = fields((REPOSITORY / model / "configs" / "gpu.pbtxt").read_text())
    height, width = MODELS[model]

    assert cpu["name"] == gpu["name"] == model
    assert (
        cpu["dims"]
        == gpu["dims"]
        == [f"{height}, {width}, 3", f"{height}, {width}, 1", f"{height}, {width}, 3"]
    )
    assert (cpu["kind"], gpu["kind"]) == ("KIND_CPU", "KIND_GPU")
    for config in (cpu, gpu):
        assert config["max_batch_size"] >= 8  # type: ignore[operator]
        assert 0 < config["queue_delay"] <= 10_000  # type: ignore[operator]
        assert config["queue_size"] > 0  # type: ignore[operator]


def test_the_repository_root_holds_only_models_and_shared_modules() -> None:
    # Triton reads every directory of the root as a model: a stray __pycache__/ breaks start-up.
    directories = {p.name for p in REPOSITORY.iterdir() if p.is_dir()}

    assert directories == set(MODELS)
