"""Stand-ins for the operate stage's remote parts (Triton's inpainter, a translation provider), and
spies around its real local parts (fetcher, renderer, store).

Each double records what it was asked, so a test can assert the processor's
side of the contract: which variant, which mask, which texts in which order,
what was rendered and stored, and what the memory budget held meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from processors.images.fetch import EncodedImage, ImageFetcher, ImageSettings
from processors.images.memory_budget import MemoryBudget
from processors.images.storage import LocalStore
from processors.stages.render import DEFAULT_FONT, Placement, Renderer

PAINT = (255, 0, 255)  # magenta: a colour the synthetic samples never draw, so painted pixels are known
PUBLIC = "http://results.test"  # the base URL MeteredStore serves results under
VARIANTS = {False: "inpaint_short", True: "inpaint_long"}  # as InpaintClient.variant picks them


@dataclass(frozen=True, slots=True)
class Inpainted:
    """One call of the inpainter: the variant ``is_long`` picks, the pixels and mask it got, the bytes
    the worker's budget held at that moment."""

    variant: str
    image: np.ndarray
    mask: np.ndarray
    budget_used: int


@dataclass
class PaintInpainter:
    """Stands in for Triton: paints exactly the masked pixels ``PAINT`` (the client's guarantee that only
    masked pixels change) and records each call; ``error`` is raised instead when set."""

    budget: MemoryBudget | None = None
    error: Exception | None = None
    calls: list[Inpainted] = field(default_factory=list)

    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray:
        used = self.budget.used if self.budget is not None else 0
        self.calls.append(Inpainted(VARIANTS[is_long], image.copy(), mask.copy(), used))
        if self.error is not None:
            raise self.error
        return np.where(mask[..., None] > 0, np.array(PAINT, np.uint8), image).astype(np.uint8)


@dataclass
class RecordingTranslator:
    """A Translator that answers ``번역 <n>`` for the n-th text (so order is visible in the result) and
    records each call; ``error`` is raised instead, ``drop`` answers that many texts fewer."""

    error: Exception | None = None
    drop: int = 0
    calls: list[list[str]] = field(default_factory=list)

    async def translate(self, texts: Sequence[str]) -> list[str]:
        self.calls.append(list(texts))
        if self.error is not None:
            raise self.error
        if not texts:
            return []
        return [f"번역 {n}" for n in range(len(texts) - self.drop)]

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One render: what the renderer got and what it gave back."""

    cleaned: np.ndarray
    original: np.ndarray
    placements: list[Placement]
    result: np.ndarray


class CapturingRenderer(Renderer):
    """The real Renderer, keeping what each render got and gave."""

    def __init__(self) -> None:
        super().__init__(DEFAULT_FONT)
        self.calls: list[Rendered] = []

    def render(self, cleaned: np.ndarray, original: np.ndarray, placements: Sequence[Placement]) -> np.ndarray:
        result = super().render(cleaned, original, placements)
        self.calls.append(Rendered(cleaned.copy(), original.copy(), list(placements), result.copy()))
        return result


class MeteredStore(LocalStore):
    """The real LocalStore, noting the bytes the budget holds while a result is stored."""

    def __init__(self, directory: Path, budget: MemoryBudget) -> None:
        super().__init__(directory, PUBLIC)
        self.budget = budget
        self.held: list[int] = []

    async def put(self, request_id: str, image_id: str, image: Any) -> str:
        self.held.append(self.budget.used)
        return await super().put(request_id, image_id, image)


class SignallingFetcher(ImageFetcher):
    """The real ImageFetcher; ``fetched`` is set as the encoded image goes back to the processor."""

    def __init__(self, settings: ImageSettings) -> None:
        super().__init__(settings)
        self.fetched = asyncio.Event()

    async def fetch_encoded(self, url: str) -> EncodedImage:
        encoded = await super().fetch_encoded(url)
        self.fetched.set()
        return encoded
