"""``millstream bench pipeline``: the whole image pipeline on generated images, embedded stack.

Baseline, measured in the same run against the same tritonserver: the same
processors (ocr, then operate) called one image after another in one process.
Then the stack of ``millstream up`` (a worker process per stage) processes the
same images submitted at once. Prints images/s, p50/p99 end-to-end latency
(from the task's entry id to its success entry id) and the mean time per step
(fetch, ocr, mask, inference, translation, render, store) from the workers'
``millstream_step_seconds`` histograms. Last line:
``pipeline_images_per_s=<float> sequential_images_per_s=<float> ratio=<float>``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from processors.images.fetch import ImageFetcher, ImageSettings
from processors.images.storage import LocalStore
from processors.inference.client import InpaintClient
from processors.inference.settings import TritonSettings
from processors.local import samples
from processors.local.submit import outcomes, submit, task_for
from processors.local.up import Stack
from processors.pipeline import NAME
from processors.stages.ocr import OcrEngine, OcrProcessor
from processors.stages.operate import OperateProcessor
from processors.stages.render import Renderer
from processors.stages.steps import Steps
from processors.translate.translator import TranslateSettings, build_translator
from streams.message import Message
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.server import free_port
from streams.settings import Settings

STEPS = ("fetch", "ocr", "mask", "inference", "translation", "render", "store")


def _make_images(folder: Path, count: int, long_every: int) -> list[tuple[Path, bool]]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for n in range(count):
        is_long = long_every > 0 and n % long_every == 0
        path = folder / f"bench-{n}.png"
        Image.fromarray(samples.product_image(is_long, seed=1000 + n).image).save(path)
        made.append((path, is_long))
    return made


def _means(steps: Steps) -> dict[str, float]:
    out = {}
    for family in steps.histogram.collect():
        sums = {s.labels["step"]: s.value for s in family.samples if s.name.endswith("_sum")}
        counts = {s.labels["step"]: s.value for s in family.samples if s.name.endswith("_count")}
        out = {k: sums[k] / counts[k] for k in sums if counts.get(k)}
    return out


async def _sequential(images: list[tuple[Path, bool]], triton_url: str,
                      root: Path) -> tuple[float, dict[str, float]]:
    registry = CollectorRegistry()
    steps = Steps(registry)
    fetcher = ImageFetcher(ImageSettings(file_roots=(str(root),)))
    engine = OcrEngine()
    client = InpaintClient(TritonSettings().client_config(triton_url), registry)
    await client.start()
    translator = build_translator(TranslateSettings(), None, registry, ratelimit_key="bench")
    store = LocalStore(root / "sequential-out", "http://127.0.0.1:1")
    ocr = OcrProcessor(fetcher, engine, steps)
    operate = OperateProcessor(fetcher, client, translator, Renderer(), store, steps)
    started = time.perf_counter()
    for n, (path, is_long) in enumerate(images):
        task = {"request_id": f"seq-{n}", "image_url": path.as_uri(), "image_id": path.stem,
                "is_long": is_long}
        [found] = await ocr(Message(f"{n}-0", "tasks", task, task["request_id"]))
        await operate(Message(f"{n}-1", "ocr", found.payload, task["request_id"]))
    rate = len(images) / (time.perf_counter() - started)
    await client.close()
    await fetcher.aclose()
    await translator.aclose()
    await engine.aclose()
    return rate, _means(steps)


def _worker_steps(ports: dict[str, int]) -> dict[str, float]:
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for port in ports.values():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "millstream_step_seconds_sum":
                    sums[s.labels["step"]] = sums.get(s.labels["step"], 0.0) + s.value
                elif s.name == "millstream_step_seconds_count":
                    counts[s.labels["step"]] = counts.get(s.labels["step"], 0.0) + s.value
    return {k: sums[k] / counts[k] for k in sums if counts.get(k)}


async def _through_stack(stack: Stack, redis_url: str,
                         images: list[tuple[Path, bool]]) -> tuple[float, list[float]]:
    redis = connect(Settings(redis_url=redis_url))
    keys = Keys(stack.settings.namespace, NAME)
    tasks = [task_for(str(path), stack.inbox, is_long) for path, is_long in images]
    try:
        started = time.perf_counter()
        ids = await submit(redis, keys, tasks, stack.settings)
        found = await outcomes(redis, keys, {t["request_id"] for t in tasks}, seconds=1800)
        elapsed = time.perf_counter() - started
    finally:
        await redis.aclose()
    failed = [t["request_id"] for t in tasks if found.get(t["request_id"], {}).get("outcome") != "success"]
    if failed:
        raise SystemExit(f"bench: {len(failed)} tasks did not succeed; see {stack.data / 'logs'}")
    def ms(entry_id: str) -> int:
        return int(entry_id.split("-")[0])

    latencies = [(ms(found[t["request_id"]]["entry_id"]) - ms(i)) / 1000
                 for t, i in zip(tasks, ids, strict=True)]
    return len(tasks) / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pipeline(
    images: Annotated[int, typer.Option(help="Images to process")] = 30,
    long_every: Annotated[int, typer.Option(help="Every n-th image is a long one (0: none)")] = 3,
) -> None:
    """The whole image pipeline on generated images against a sequential in-process baseline."""
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        data = Path(tmp)
        stack = Stack(Settings(metrics_port=0), free_port(), data, external_redis=False)
        try:
            redis_url, triton_url = stack.start_servers()
            made = _make_images(stack.inbox / "src", images, long_every)
            longs = sum(1 for _, is_long in made if is_long)
            typer.echo(f"bench pipeline: {images} images ({longs} long), triton {triton_url}")
            seq_rate, seq_steps = asyncio.run(_sequential(made, triton_url, stack.inbox))
            typer.echo(f"sequential (one process, one image at a time): {seq_rate:.2f} images/s")
            ports = stack.start_workers(stack.child_env(redis_url, triton_url))
            rate, latencies = asyncio.run(_through_stack(stack, redis_url, made))
            steps = _worker_steps(ports)
        finally:
            stack.stop()
    typer.echo(f"pipeline (millstream up, a process per stage): {rate:.2f} images/s; end-to-end latency "
               f"p50={_pct(latencies, 0.5):.2f} s p99={_pct(latencies, 0.99):.2f} s")
    typer.echo("mean time per step (s):  " + "  ".join(f"{s}={steps.get(s, 0):.3f}" for s in STEPS))
    typer.echo("  sequential baseline:    " + "  ".join(f"{s}={seq_steps.get(s, 0):.3f}" for s in STEPS))
    typer.echo(f"pipeline_images_per_s={rate:.3f} sequential_images_per_s={seq_rate:.3f} "
               f"ratio={rate / seq_rate:.3f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("pipeline")(pipeline)
