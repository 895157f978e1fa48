"""The Triton client of the text-removal models: one per process, reused by every call.

``InpaintClient.inpaint(image, mask, is_long)`` picks ``inpaint_long`` for tall
product pages and ``inpaint_short`` otherwise, fits the image to the model's
shape (processors.inference.tiles), sends the tiles over async gRPC and returns an
image of the original size that equals the input outside the mask.

Per call: a deadline over all attempts; retries with jittered exponential
backoff on transient failures (server down, queue full, per-attempt deadline);
a circuit breaker that fails fast while Triton keeps failing; bounded
concurrency per model (defaults 30 and 30, as the seed's inference queues), so
that enough requests wait inside Triton for its dynamic batcher to form batches.
Raises InferenceUnavailable (retryable), InferenceRejected (permanent), or
InferenceInputTooLarge (permanent, a BadImage) when the tiles an image needs
would exceed ``max_input_bytes`` (MILLSTREAM_MAX_INFERENCE_BYTES), checked from
the tile plan before any tile is built. Everything here is uint8: the float
conversion happens inside the Triton models. No torch here: the models live in
triton_models/.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from tritonclient.grpc import InferInput, InferRequestedOutput  # type: ignore[import-untyped]
from tritonclient.grpc.aio import InferenceServerClient  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from processors.images.limits import InferenceInputTooLarge
from processors.images.settings import MAX_INFERENCE_BYTES
from processors.inference.circuit_breaker import CircuitBreaker
from processors.inference.config import InferenceConfig, Variant, backoff, validated
from processors.inference.errors import (
    CIRCUIT_OPEN,
    DEADLINE,
    MODEL_ERROR,
    UNAVAILABLE,
    InferenceRejected,
    InferenceUnavailable,
    classify,
)
from processors.inference.metrics import BatchStats, InferenceMetrics
from processors.inference.stats import batch_stats_from_json, model_shape_from_json
from processors.inference.tiles import (
    Uint8,
    cut_tiles,
    input_bytes,
    plan_tiles,
    restore,
    scale_inputs,
    stitch,
)

__all__ = ["InferenceConfig", "InpaintClient", "Variant"]
MAX_MESSAGE = 2**31 - 1
ATTEMPT_MARGIN = 0.05  # seconds


async def _all(calls: Sequence[Awaitable[Uint8]]) -> list[Uint8]:
    """Await every call; if one fails, cancel the others before raising."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class InpaintClient:
    """Async client of inpaint_short / inpaint_long; see the module docstring."""

    def __init__(
        self,
        config: InferenceConfig,
        registry: CollectorRegistry,
        *,
        breaker: CircuitBreaker | None = None,
        rng: random.Random | None = None,
        max_input_bytes: int = MAX_INFERENCE_BYTES,
    ) -> None:
        self.config, self.max_input_bytes = config, max_input_bytes
        self.metrics = InferenceMetrics(registry)
        self._breaker = breaker or CircuitBreaker(config.breaker)
        self._rng = rng or random.Random()
        self._client: InferenceServerClient | None = None
        self._variants: dict[bool, Variant] = {}

    async def start(self) -> None:
        """Connect, wait until both models are ready, and read their shapes from Triton."""
        c = self.config
        await self.connect()
        try:
            async with asyncio.timeout(c.ready_timeout):
                short = await self.open_variant(c.short_model, c.short_concurrency)
                long = await self.open_variant(c.long_model, c.long_concurrency)
        except TimeoutError:
            await self.close()
            raise InferenceUnavailable(
                f"models not ready at {c.url} after {c.ready_timeout}s", model="*", kind=UNAVAILABLE
            ) from None
        self._variants = {False: short, True: long}

    async def connect(self) -> None:
        """Open the gRPC channel (lazily: nothing is sent until the first call)."""
        self._client = InferenceServerClient(
            self.config.url,
            channel_args=[
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", self.config.max_reconnect_backoff_ms),
            ],
        )

    async def open_variant(self, model: str, concurrency: int) -> Variant:
        """Wait until ``model`` is ready; return it with its shape and ``concurrency`` slots."""
        client = self._connected()
        while True:
            try:
                if await client.is_model_ready(model):
                    break
            except InferenceServerException:
                pass  # not up yet: the caller bounds the wait
            await asyncio.sleep(0.2)
        metadata = await client.get_model_metadata(model, as_json=True)
        config = await client.get_model_config(model, as_json=True)
        return Variant(
            model=model,
            shape=model_shape_from_json(metadata),
            max_batch_size=max(1, int(config["config"].get("max_batch_size", 1))),
            slots=asyncio.Semaphore(concurrency),
        )

    async def ready(self) -> bool:
        """Whether Triton says it is ready: a health probe that bypasses the breaker."""
        try:
            return bool(await self._connected().is_server_ready(client_timeout=2.0))
        except InferenceServerException:
            return False

    def _connected(self) -> InferenceServerClient:
        if self._client is None:
            raise RuntimeError("InpaintClient.start() was not awaited")
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> InpaintClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def variant(self, is_long: bool) -> Variant:
        if not self._variants:
            raise RuntimeError("InpaintClient.start() was not awaited")
        return self._variants[is_long]

    async def inpaint(self, image: Any, mask: Any, is_long: bool) -> Uint8:
        """Remove what ``mask`` (H,W or H,W,1; non-zero = remove) covers in ``image``
        (H,W,3 uint8 RGB). The result has the input's shape and equals it outside the mask."""
        variant = self.variant(is_long)
        image, mask = validated(image, mask, variant.model)
        if not mask.any():
            return np.array(image, copy=True)
        plan = plan_tiles(image.shape[0], image.shape[1], variant.shape, self.config.tile_overlap)
        if (needed := input_bytes(plan)) > self.max_input_bytes:
            tiles = len(plan.rows) * len(plan.cols)
            height, width = image.shape[:2]
            raise InferenceInputTooLarge(self.max_input_bytes, needed, tiles, variant.model, width, height)
        scaled_image, scaled_mask = scale_inputs(image, mask, plan)
        origins, tiles, tile_masks = cut_tiles(scaled_image, scaled_mask, plan)
        filled = await self.infer(variant, tiles, tile_masks)
        return restore(image, mask, plan, stitch(scaled_image, plan, origins, filled))

    async def infer(self, variant: Variant, images: Uint8, masks: Uint8) -> Uint8:
        """Run the model on inputs already of its shape: (N,H,W,3) and (N,H,W,1).
        Splits N into requests of at most the model's max batch size."""
        step = variant.max_batch_size
        chunks = [
            self._call(variant, images[i : i + step], masks[i : i + step])
            for i in range(0, len(images), step)
        ]
        return np.concatenate(await _all(chunks)) if chunks else images.copy()

    async def _call(self, variant: Variant, images: Uint8, masks: Uint8) -> Uint8:
        """One request, with the deadline, retries, breaker and metrics around it."""
        loop = asyncio.get_running_loop()
        expires = loop.time() + self.config.deadline
        with self.metrics.latency.labels(variant.model).time():
            try:
                async with asyncio.timeout_at(expires):
                    return await self._retrying(variant, images, masks, expires)
            except TimeoutError:  # the breaker heard of in-flight timeouts from _attempt
                self.metrics.errors.labels(variant.model, DEADLINE).inc()
                raise InferenceUnavailable(
                    f"{variant.model}: no answer within {self.config.deadline}s",
                    model=variant.model,
                    kind=DEADLINE,
                ) from None

    async def _retrying(self, variant: Variant, images: Uint8, masks: Uint8, expires: float) -> Uint8:
        c = self.config
        for attempt in range(1, c.max_attempts + 1):
            try:
                return await self._attempt(variant, images, masks, expires)
            except InferenceUnavailable as error:
                self.metrics.errors.labels(variant.model, error.kind).inc()
                if attempt == c.max_attempts or error.kind == CIRCUIT_OPEN:
                    raise
            except InferenceRejected as error:
                self.metrics.errors.labels(variant.model, error.kind).inc()
                raise
            self.metrics.retries.labels(variant.model).inc()
            await asyncio.sleep(backoff(attempt, c.backoff_base, c.backoff_cap, self._rng))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, variant: Variant, images: Uint8, masks: Uint8, expires: float) -> Uint8:
        async with variant.slots:
            if not self._breaker.allow():
                raise InferenceUnavailable(
                    f"{variant.model}: circuit open after repeated failures",
                    model=variant.model,
                    kind=CIRCUIT_OPEN,
                )
            with self.metrics.in_flight.labels(variant.model).track_inprogress():
                # Ends just before the call's deadline, so a request Triton sat on is
                # reported (and counted by the breaker) as a gRPC DEADLINE_EXCEEDED.
                remaining = max(0.001, expires - asyncio.get_running_loop().time() - ATTEMPT_MARGIN)
                try:
                    result = await self._send(variant, images, masks, remaining)
                except InferenceUnavailable:
                    self._breaker.failure()
                    raise
                except InferenceRejected:
                    self._breaker.success()  # it answered: the server is up
                    raise
                except BaseException:
                    self._breaker.abandon()  # cancelled: no verdict on the server
                    raise
            self._breaker.success()
            return _checked(result, variant, len(images))

    async def _send(self, variant: Variant, images: Uint8, masks: Uint8, seconds: float) -> Any:
        inputs = [
            InferInput("IMAGE", list(images.shape), "UINT8"),
            InferInput("MASK", list(masks.shape), "UINT8"),
        ]
        inputs[0].set_data_from_numpy(np.ascontiguousarray(images))
        inputs[1].set_data_from_numpy(np.ascontiguousarray(masks))
        try:
            return await self._connected().infer(
                variant.model, inputs, outputs=[InferRequestedOutput("IMAGE_OUT")], client_timeout=seconds
            )
        except InferenceServerException as error:
            raise classify(error.status(), error.message() or str(error), variant.model) from None

    async def batch_stats(self) -> dict[str, BatchStats]:
        """Triton's batch statistics of every model it serves; also refreshes the metrics."""
        response = await self._connected().get_inference_statistics(as_json=True)
        stats = batch_stats_from_json(response)
        self.metrics.batches.snapshot = stats
        return stats

    async def poll_statistics(self, interval: float, on_error: Callable[[Exception], None]) -> None:
        """Refresh the batch metrics every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.batch_stats()
            except InferenceServerException as error:
                on_error(error)
            await asyncio.sleep(interval)


def _checked(result: Any, variant: Variant, count: int) -> Uint8:
    out = result.as_numpy("IMAGE_OUT")
    expected = (count, variant.shape.height, variant.shape.width, 3)
    if out is None or out.shape != expected or out.dtype != np.uint8:
        got = None if out is None else (out.shape, out.dtype)
        raise InferenceRejected(
            f"{variant.model}: IMAGE_OUT is {got}, expected {expected}", model=variant.model, kind=MODEL_ERROR
        )
    return np.asarray(out)
