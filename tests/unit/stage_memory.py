"""Run one stage's CPU work on one worst-case image under a memory rlimit, and report its peak.

``python -m tests.unit.stage_memory CASE STAGE [HEADROOM_MIB]`` prints one JSON
line. STAGE is ``decode`` (bytes to RGB pixels, the part of every stage's
fetch that costs memory), ``ocr`` (decode + OCR, as the ocr stage), ``operate`` (decode +
mask + inference pre/postprocessing with Triton replaced by the identity +
render + PNG encode, as the operate stage) or ``ocr-unfitted`` (decode + the
engine called on the raw image, as main did before processors.stages.ocr_fit).
``python -m tests.unit.stage_memory --table`` measures every case and stage and
prints the table of docs/MEMORY.md.

Everything is imported, the OCR models loaded (ocr stages only) and the
image encoded first; freed heap goes back to the system (``malloc_trim``);
then the address space is capped at what the process holds plus
HEADROOM_MIB (RLIMIT_AS), the peak-RSS counter is reset
(``/proc/self/clear_refs``), and the stage runs. ``peak_mib`` is the stage's
peak RSS over the RSS it started with, first-inference costs included. A
separate process per run, so one run's peak cannot hide another's.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import io
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image, ImageDraw, ImageFont

CASES: dict[str, tuple[int, int]] = {  # name: (width, height), each the worst of its kind the limits admit
    "1x1": (1, 1),
    "1x1280": (1, 1280),
    "1280x1": (1280, 1),
    "tall-max-aspect-15x30000": (15, 30_000),
    "wide-max-aspect-10000x5": (10_000, 5),
    "seed-page-790x20000": (790, 20_000),
    "max-height-1333x30000": (1333, 30_000),
    "max-width-10000x4000": (10_000, 4000),
    "square-6324x6324": (6324, 6324),
}
STAGES = ("ocr", "operate")
ROOT = Path(__file__).resolve().parents[2]
HEADROOM_MIB = 1536
TEXT = "限时特价"


def image_bytes(width: int, height: int) -> bytes:
    """A white PNG with a line of text every 400 px, where the image is big enough to hold one."""
    from processors.local.samples import find_cjk_font

    canvas = Image.new("RGB", (width, height), "white")
    if width >= 200 and height >= 60:
        font, pen = ImageFont.truetype(str(find_cjk_font()), 40), ImageDraw.Draw(canvas)
        for top in range(10, height - 50, 400):
            for left in range(10, width - 180, 1200):
                pen.text((left, top), TEXT, font=font, fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _decode(_: Any) -> Callable[[bytes], object]:
    from processors.images.decode import decode

    return decode


def _ocr(engine: Any) -> Callable[[bytes], object]:
    from processors.images.decode import decode

    return lambda data: engine.read_sync(decode(data).pixels)


def _ocr_unfitted(engine: Any) -> Callable[[bytes], object]:
    from processors.images.decode import decode

    def run(data: bytes) -> object:
        rgb = decode(data).pixels
        return engine._engine()(np.ascontiguousarray(rgb[:, :, ::-1]))  # what main's read_sync sent

    return run


def _operate(_: Any) -> Callable[[bytes], object]:
    from prometheus_client import CollectorRegistry

    from processors.images.decode import decode
    from processors.images.storage import encode_png
    from processors.inference.client import InferenceConfig, InpaintClient, Variant
    from processors.inference.tiles import ModelShape
    from processors.stages.mask import TextBox, build_mask
    from processors.stages.render import Placement, Renderer

    class IdentityTriton(InpaintClient):
        async def infer(self, variant: Variant, images: Any, masks: Any) -> Any:
            return images.copy()  # what Triton sends back has the tiles' shape

    def run(data: bytes) -> object:
        original = decode(data).pixels
        height, width = original.shape[:2]
        corners = ((0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height)))
        boxes = [TextBox(corners, TEXT, 0.99)]  # one box over everything: every tile is cut and sent
        mask = build_mask(height, width, boxes)
        client = IdentityTriton(InferenceConfig(), CollectorRegistry())
        shape = ModelShape(512, 512) if width >= height else ModelShape(1024, 384)  # the costlier model
        client._variants = {False: Variant("inpaint", shape, 8, asyncio.Semaphore(30))}
        cleaned = asyncio.run(client.inpaint(original, mask, False))
        rendered = Renderer().render(cleaned, original, [Placement(corners, "한정 특가")])
        return len(encode_png(rendered))

    return run


RUNS = {"decode": _decode, "ocr": _ocr, "ocr-unfitted": _ocr_unfitted, "operate": _operate}


def measure(case: str, stage: str, headroom_mib: int) -> dict[str, Any]:
    """Run ``stage`` on ``case`` in this process under the rlimit; the report as a dict."""
    from processors.stages.ocr import OcrEngine

    engine = OcrEngine()
    if stage.startswith("ocr"):
        engine._engine()  # load the models (an ocr worker holds them from its first task on)
    data = image_bytes(*CASES[case])
    run = RUNS[stage](engine)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # the set-up's freed heap must not hide the stage's own pages
    limit = _status("VmSize") + headroom_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # restart VmHWM (the peak RSS) from the current RSS
    start_rss, started = _status("VmRSS"), time.perf_counter()
    report: dict[str, Any] = {"case": case, "stage": stage, "size": CASES[case], "headroom_mib": headroom_mib}
    try:
        run(data)
        report["error"] = None
    except Exception as error:  # noqa: BLE001 -- the point: which error a stage dies of under the cap
        cause = error.__cause__ or error.__context__
        because = f" from {type(cause).__name__}: {str(cause).strip()[:200]}" if cause else ""
        report["error"] = f"{type(error).__name__}: {str(error)[:200]}{because}"
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["peak_mib"] = round((_status("VmHWM") - start_rss) / 2**20, 1)
    report["start_rss_mib"] = round(start_rss / 2**20, 1)
    return report


def run_isolated(case: str, stage: str, headroom_mib: int = HEADROOM_MIB, timeout: float = 600) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; a process the kernel killed reports its signal."""
    done = subprocess.run([sys.executable, "-m", "tests.unit.stage_memory", case, stage, str(headroom_mib)],
                          capture_output=True, timeout=timeout, cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        return {"case": case, "stage": stage, "error": f"exit {done.returncode}: {done.stderr[-300:]!r}"}
    return orjson.loads(done.stdout.splitlines()[-1])


def table() -> str:
    rows = ["| image (w x h) | stage | peak RSS over start (MiB) | seconds | outcome |", "|---|---|---|---|---|"]
    for case in CASES:
        for stage in ("decode", *STAGES):
            r = run_isolated(case, stage)
            rows.append(f"| {case} | {stage} | {r.get('peak_mib')} | {r.get('seconds')} | {r['error'] or 'ok'} |")
    r = run_isolated("1x1280", "ocr-unfitted")
    rows.append(f"| 1x1280 | ocr as on main (unfitted) | {r.get('peak_mib')} | {r.get('seconds')} | {r['error']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(table())
    else:
        headroom = int(sys.argv[3]) if len(sys.argv) > 3 else HEADROOM_MIB
        print(orjson.dumps(measure(sys.argv[1], sys.argv[2], headroom)).decode())
