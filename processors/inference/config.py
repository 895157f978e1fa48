"""The inference client's config, its per-model handle, and its pure helpers.

The ``MILLSTREAM_TRITON_*`` settings section is ``processors.inference.settings.TritonSettings``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from processors.inference.circuit_breaker import BreakerPolicy
from processors.inference.errors import INVALID, InferenceRejected
from processors.inference.settings import DEFAULT_URL
from processors.inference.tiles import ModelShape, Uint8


@dataclass(frozen=True, slots=True)
class InferenceConfig:
    """Settings of the inference client; ``url`` is host:port of Triton's gRPC endpoint."""

    url: str = DEFAULT_URL
    short_model: str = "inpaint_short"
    long_model: str = "inpaint_long"
    short_concurrency: int = 30
    long_concurrency: int = 30
    deadline: float = 60.0  # seconds for one inpaint call, retries included
    max_attempts: int = 5
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    ready_timeout: float = 60.0  # start(): how long to wait for the models to be ready
    tile_overlap: int = 32
    # How soon the gRPC channel redials a server that went away (gRPC's default
    # grows to two minutes, far past any deadline here).
    max_reconnect_backoff_ms: int = 1000

    def __post_init__(self) -> None:
        if min(self.short_concurrency, self.long_concurrency, self.max_attempts) < 1:
            raise ValueError("concurrency and max_attempts must be >= 1")
        if self.deadline <= 0 or self.backoff_base < 0 or self.backoff_cap < self.backoff_base:
            raise ValueError("deadline must be > 0 and 0 <= backoff_base <= backoff_cap")


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Variant:
    """One model as the client uses it: its shape, batch limit and concurrency slots."""

    model: str
    shape: ModelShape
    max_batch_size: int
    slots: asyncio.Semaphore


def validated(image: Any, mask: Any, model: str) -> tuple[Uint8, Uint8]:
    """The image (H,W,3 uint8) and its mask as H,W uint8; InferenceRejected otherwise."""
    image, mask = np.asarray(image), np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise InferenceRejected(
            f"image must be HxWx3 uint8, got {image.shape} {image.dtype}", model=model, kind=INVALID
        )
    if mask.shape != image.shape[:2]:
        raise InferenceRejected(
            f"mask {mask.shape} does not match image {image.shape}", model=model, kind=INVALID
        )
    return image, (mask != 0).astype(np.uint8)
