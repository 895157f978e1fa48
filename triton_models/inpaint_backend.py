"""The Triton python-backend side of the inpainting models, shared by all of them.

Each ``<model>/1/model.py`` re-exports ``TritonPythonModel`` from here. One call
to ``execute`` gets every request the dynamic batcher gathered; their images
are concatenated into one tensor and filled in one batched computation (never
a loop over images), then split back into one response per request.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from inpaint_fill import inpaint


class TritonPythonModel:
    """Inputs IMAGE (N,H,W,3 uint8) and MASK (N,H,W,1 uint8); output IMAGE_OUT (N,H,W,3)."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self._name = config["name"]
        if args.get("model_instance_kind") == "GPU":
            self._device = torch.device(f"cuda:{args['model_instance_device_id']}")
        else:
            self._device = torch.device("cpu")

    def execute(self, requests: list[Any]) -> list[Any]:
        images = [pb_utils.get_input_tensor_by_name(r, "IMAGE").as_numpy() for r in requests]
        masks = [pb_utils.get_input_tensor_by_name(r, "MASK").as_numpy() for r in requests]
        try:
            filled = self._fill(np.concatenate(images), np.concatenate(masks))
        except Exception as error:  # noqa: BLE001 - the backend boundary: each request gets the error
            message = f"{self._name}: {type(error).__name__}: {error}"
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(message)) for _ in requests]
        bounds = np.cumsum([len(image) for image in images])[:-1]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("IMAGE_OUT", part)])
            for part in np.split(filled, bounds)
        ]

    def _fill(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            image = torch.from_numpy(images).to(self._device)
            mask = torch.from_numpy(masks).to(self._device)
            return np.ascontiguousarray(inpaint(image, mask).cpu().numpy())

    def finalize(self) -> None:
        """Nothing to release: tensors are freed with the process."""
