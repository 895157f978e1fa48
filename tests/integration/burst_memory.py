"""Run a burst of operate tasks through the real OperateProcessor under a memory rlimit.

``python -m tests.integration.burst_memory TASKS BUDGET_MIB HEADROOM_MIB [WIDTH HEIGHT]``
prints one JSON line. TASKS tasks, each on a WIDTH x HEIGHT image (a white PNG
with text, read through file://) with one OCR box over the whole image (so the
whole image is masked, cleaned and rendered, as in tests/unit/stage_memory.py),
run at once (``asyncio.gather``, as a stage with concurrency >= TASKS would);
the processor's budget is BUDGET_MIB (0: unbounded). Triton is replaced by an
inpainter that paints the masked pixels white; the translator returns a fixed
text. Everything is imported, the default thread pool started and the image
written first; then the address space is capped (RLIMIT_AS) at what the process
holds plus HEADROOM_MIB, the peak-RSS counter reset, and the burst runs.
``peak_mib`` is the burst's peak RSS over the RSS it started with; ``errors``
counts the tasks that failed (or had not finished after BURST_WAIT_S: out of
memory, the event loop itself can fail to wake a task), ``error`` is the first
failure's text.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tests.unit.stage_memory import ROOT, TEXT, _status, image_bytes

WIDTH, HEIGHT = 2000, 4000  # 8 M pixels: big enough to cost memory, quick enough to run a burst of
BURST_WAIT_S = 90


class EraseInpainter:
    """Stands in for Triton: paints the masked pixels white, as a text remover would."""

    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray:
        return np.where(mask[..., None] > 0, np.uint8(255), image)


class FixedTranslator:
    async def translate(self, texts: Sequence[str]) -> list[str]:
        return ["한정 특가" for _ in texts]

    async def aclose(self) -> None:
        return None


async def _start_thread_pool() -> None:
    """Start every thread of the default pool (and its malloc arena) before the cap, as a worker
    that has run a while has them: the burst's figure is then the tasks' memory alone."""
    workers = min(32, (os.cpu_count() or 1) + 4)
    barrier = threading.Barrier(workers)

    def touch() -> None:
        np.ones(1024 * 1024, np.uint8).sum()  # a first allocation in this thread makes its arena
        barrier.wait(timeout=30)

    await asyncio.gather(*(asyncio.to_thread(touch) for _ in range(workers)))


def measure(tasks: int, budget_mib: int, headroom_mib: int, width: int, height: int) -> dict[str, Any]:
    """Run the burst in this process under the rlimit; the report as a dict."""
    return asyncio.run(_burst(tasks, budget_mib, headroom_mib, width, height))


async def _burst(tasks: int, budget_mib: int, headroom_mib: int, width: int, height: int) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from processors.images.fetch import ImageFetcher, ImageSettings
    from processors.images.memory_budget import MemoryBudget
    from processors.images.storage import LocalStore
    from processors.stages.operate import OperateProcessor
    from processors.stages.render import Renderer
    from processors.stages.steps import Steps
    from streams.message import Message

    work = Path(tempfile.mkdtemp(prefix="burst-memory-"))
    (work / "in").mkdir()
    (work / "in" / "page.png").write_bytes(image_bytes(width, height))
    corners = [[0.0, 0.0], [float(width), 0.0], [float(width), float(height)], [0.0, float(height)]]
    payload = {"request_id": "r", "image_id": "i", "image_url": (work / "in" / "page.png").as_uri(),
               "is_long": False, "ocr_result": [[corners, [TEXT, 0.99]]]}
    await _start_thread_pool()
    images = ImageFetcher(ImageSettings(file_roots=(str(work / "in"),)))
    operate = OperateProcessor(images, EraseInpainter(), FixedTranslator(), Renderer(),
                               LocalStore(work / "out", "http://127.0.0.1:8080"), Steps(CollectorRegistry()),
                               budget=MemoryBudget(budget_mib * 2**20))
    messages = [Message(id=f"{n}-0", stream="ocr", payload={**payload, "request_id": f"r{n}"}, request_id=f"r{n}")
                for n in range(tasks)]
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    limit = _status("VmSize") + headroom_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with open("/proc/self/clear_refs", "w") as refs:  # noqa: ASYNC230 -- before the burst, nothing else runs
        refs.write("5")
    start_rss, started = _status("VmRSS"), time.perf_counter()
    running = [asyncio.ensure_future(operate(m)) for m in messages]
    # Out of memory, an allocation inside the event loop's own machinery can fail too and leave a
    # task never woken: a task unfinished after BURST_WAIT_S counts as failed (the worker hung).
    done, hung = await asyncio.wait(running, timeout=BURST_WAIT_S)
    failed = [error for error in (task.exception() for task in done) if error is not None]
    if hung:
        failed.append(TimeoutError(f"{len(hung)} of {tasks} tasks unfinished after {BURST_WAIT_S} s"))
    first = f"{type(failed[0]).__name__}: {str(failed[0])[:300]}" if failed else None
    return {"tasks": tasks, "budget_mib": budget_mib, "headroom_mib": headroom_mib, "size": [width, height],
            "errors": len(failed) - bool(hung) + len(hung), "error": first,
            "stored": len(list((work / "out").glob("*.png"))),
            "seconds": round(time.perf_counter() - started, 2),
            "peak_mib": round((_status("VmHWM") - start_rss) / 2**20, 1),
            "start_rss_mib": round(start_rss / 2**20, 1)}


def run_isolated(tasks: int, budget_mib: int, headroom_mib: int, width: int = WIDTH, height: int = HEIGHT,
                 timeout: float = 150) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; a process the kernel killed reports its exit status."""
    argv = [sys.executable, "-m", "tests.integration.burst_memory", *map(str, (tasks, budget_mib, headroom_mib,
                                                                              width, height))]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        return {"tasks": tasks, "budget_mib": budget_mib, "errors": tasks, "error": f"hung for {timeout} s"}
    if done.returncode != 0:
        return {"tasks": tasks, "budget_mib": budget_mib, "errors": tasks,
                "error": f"exit {done.returncode}: {done.stderr[-300:]!r}"}
    return orjson.loads(done.stdout.splitlines()[-1])


if __name__ == "__main__":
    print(orjson.dumps(measure(*map(int, sys.argv[1:6]))).decode())
