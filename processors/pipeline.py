"""The image-translation pipeline of seed 000: the composition root.

::

    img:translate:tasks --legacy-ingress--> tasks --ocr--> ocr --operate--> success
                                                                 \\--> errors (every stage)
    success --legacy-success--> img:translate:success (+ hosting:tasks)
    errors  --legacy-error-->   img:translate:error   (errors of ingress, ocr, operate only)
    success, errors --results, results-errors--> callback_url webhooks

The legacy lists' names, the task's id fields and the JSON of each list are
seed 000's contracts, in processors/legacy.py; the bridge and the list pushes
are streams' generic mechanism (streams.bridge). Settings sections are read
through streams.settings.section, secrets through streams.settings.secrets.

Run a stage: ``millstream worker processors.pipeline:build --stage operate``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from processors import legacy
from processors.egress.policy import AddressPolicy
from processors.images.fetch import ImageFetcher, ImageSettings
from processors.images.memory_budget import MemoryBudget
from processors.images.storage import LocalStore
from processors.inference.client import InpaintClient
from processors.inference.settings import TritonSettings
from processors.stages.ocr import OcrEngine, OcrProcessor
from processors.stages.operate import OperateProcessor
from processors.stages.render import Renderer
from processors.stages.results import WebhookProcessor
from processors.stages.steps import Steps
from processors.stages.task import problems as task_problems
from processors.translate.translator import TranslateSettings, build_translator
from streams.bridge import ListIngress
from streams.pipeline import Pipeline
from streams.policy import RetryPolicy
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.settings import Settings, secrets, section
from streams.stage import Stage

log = logging.getLogger("millstream.imgtr")
NAME = "imgtr"
TASK_STAGES = ("legacy-ingress", "ocr", "operate")


class LazyInpainter:
    """The Triton client, connected (and both models checked ready) on first use.

    Only the operate workers call it, so the other stages never connect to Triton.
    Once connected, Triton's batch statistics are polled for the batch-size metrics.
    """

    def __init__(self, client: InpaintClient, stats_interval: float = 15.0) -> None:
        self.client, self.stats_interval = client, stats_interval
        self._started: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    async def inpaint(self, image, mask, is_long):  # type: ignore[no-untyped-def]
        if self._started is None or (self._started.done() and self._started.exception()):
            self._started = asyncio.ensure_future(self.client.start())
        await asyncio.shield(self._started)
        if self._poller is None:
            self._poller = asyncio.ensure_future(self.client.poll_statistics(self.stats_interval, _log_stats))
        return await self.client.inpaint(image, mask, is_long)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self.client.close()


def _log_stats(error: Exception) -> None:
    log.warning("reading Triton's batch statistics failed: %s", error)


def build(settings: Settings) -> Pipeline:
    images_settings, legacy_settings = section(ImageSettings), section(legacy.LegacySettings)
    translate_settings, triton_settings = section(TranslateSettings), section(TritonSettings)
    keys, registry = Keys(settings.namespace, NAME, lists=legacy.LISTS), CollectorRegistry()
    steps, redis = Steps(registry), connect(settings)
    images = ImageFetcher(images_settings)
    ocr_engine = OcrEngine(threads=images_settings.ocr_threads)
    inpaint = InpaintClient(triton_settings.client_config(), registry,
                            max_input_bytes=images_settings.max_inference_bytes)
    translator = build_translator(translate_settings, redis, registry,
                                  ratelimit_key=keys.ratelimit("translate"))
    store = LocalStore(images_settings.store_dir, images_settings.public_url or "http://127.0.0.1:8080")
    # The error webhook posts only the task stages' errors: a webhook's own failure is not the task's outcome.
    webhooks = WebhookProcessor(AddressPolicy.parse(images_settings.fetch_allow_hosts),
                                task_stages=TASK_STAGES, secrets=secrets())
    inpainter = LazyInpainter(inpaint)
    ocr_mirrors = [legacy.OCR_RESULTS] if legacy_settings.legacy_ocr_results else []
    operate = OperateProcessor(images, inpainter, translator, Renderer(), store, steps,
                               budget=MemoryBudget(images_settings.operate_memory_budget))
    ocr = OcrProcessor(images, ocr_engine, steps, ocr_mirrors,
                       budget=MemoryBudget(images_settings.ocr_memory_budget))
    transient = RetryPolicy(base=1.0, factor=2.0, cap=60.0)
    stages = [
        # As many tasks at once as OCR processes: none waits for one inside its timeout (decision 0020).
        # Both read by priority: a task's own, and long images after short ones (level_of, decision 0036).
        Stage("ocr", "tasks", ocr, sinks=["ocr"], concurrency=ocr_engine.threads,
              max_in_flight=2 * ocr_engine.threads, timeout=120, retry=transient, priorities=True,
              priority_share=0.1),
        Stage("operate", "ocr", operate, sinks=["success"], concurrency=64, max_in_flight=128,
              timeout=max(180.0, translate_settings.call_budget + 120), retry=transient, priorities=True,
              priority_share=0.1),
        Stage("results", "success", webhooks, concurrency=32, timeout=30, retry=transient),
        Stage("results-errors", "errors", webhooks, concurrency=32, timeout=30, retry=transient),
    ]
    if legacy_settings.legacy_success:
        lists = [legacy.SUCCESS, *([legacy.HOSTING] if legacy_settings.legacy_hosting else [])]
        stages.append(Stage("legacy-success", "success", legacy.mirror_success(lists), batch_size=200))
    if legacy_settings.legacy_error:
        stages.append(Stage("legacy-error", "errors", legacy.mirror_errors(legacy.ERROR, TASK_STAGES),
                            batch_size=200))
    ingress = legacy_settings.legacy_ingress
    bridges = [ListIngress("legacy-ingress", legacy.TASKS, "tasks")] if ingress else []

    async def close_ocr() -> None:
        await ocr_engine.aclose()

    return Pipeline(NAME, stages, bridges=bridges, registry=registry, id_fields=legacy.ID_FIELDS,
                    lists=legacy.LISTS, results=("success",), validators={"tasks": task_problems}, on_stop=[
        images.aclose, translator.aclose, inpainter.close, webhooks.aclose, close_ocr, redis.aclose,
    ])
