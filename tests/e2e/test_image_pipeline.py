"""The image-translation pipeline end to end: legacy lists in and out, real Redis, Triton and OCR."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis as sync_redis
from PIL import Image

from processors.inference.server import TritonOptions, TritonServer
from processors.legacy import ERROR, SUCCESS, TASKS
from processors.local import samples
from streams.redis.server import EmbeddedRedis
from tests.conftest import require_font, require_tool
from tests.e2e.imgtr_stack import ImgtrStack
from tests.support.triton import require_tritonserver

MARGIN = 12  # the mask's dilation plus OCR box slack, in pixels


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A redis-server of its own (the legacy list names are global) and a tritonserver."""
    require_tool("redis-server")
    require_font(samples.FONT_CANDIDATES[0])
    dist = require_tritonserver()
    with EmbeddedRedis(tmp_path_factory.mktemp("e2e-redis")) as redis, TritonServer(TritonOptions(), dist=dist) as triton:
        yield redis.url, triton.grpc_url


@pytest.fixture
def client(servers: tuple[str, str]) -> Iterator[sync_redis.Redis]:
    c = sync_redis.Redis.from_url(servers[0])
    c.delete(TASKS, SUCCESS, ERROR)
    yield c
    c.close()


@pytest.fixture
def stack(servers: tuple[str, str], tmp_path: Path) -> Iterator[ImgtrStack]:
    running = ImgtrStack(servers[0], servers[1], f"e2e{uuid.uuid4().hex[:6]}", tmp_path,
                         MILLSTREAM_FETCH_ALLOW_HOSTS="127.0.0.1")
    yield running
    running.stop()


def push(client: sync_redis.Redis, tasks: list[dict | bytes]) -> None:
    client.rpush(TASKS, *[t if isinstance(t, bytes) else orjson.dumps(t) for t in tasks])


def listed(client: sync_redis.Redis, key: str) -> list[dict]:
    return [orjson.loads(x) for x in client.lrange(key, 0, -1)]


def test_thirty_images_through_the_legacy_lists(client, stack):
    made = {}
    tasks = []
    for n in range(30):
        sample = samples.product_image(is_long=n % 3 == 0, seed=100 + n)
        path = stack.images / f"p{n}.png"
        Image.fromarray(sample.image).save(path)
        made[f"img-{n}"] = sample
        tasks.append({"request_id": f"req-{n}", "image_url": path.as_uri(), "image_id": f"img-{n}",
                      "is_long": n % 3 == 0})
    push(client, tasks)
    stack.wait(lambda: client.llen(SUCCESS) + client.llen(ERROR) >= 30, timeout=600)
    assert listed(client, ERROR) == []
    results = listed(client, SUCCESS)
    assert sorted(r["request_id"] for r in results) == sorted(f"req-{n}" for n in range(30))
    boxes_changed = boxes_total = 0
    for result in results:
        assert set(result) == {"request_id", "image_id", "image_url"}
        sample = made[result["image_id"]]
        out = np.asarray(Image.open(stack.out / result["image_url"].rsplit("/", 1)[1]).convert("RGB"))
        assert out.shape == sample.image.shape
        changed = (out != sample.image).any(axis=2)
        inside = np.zeros_like(changed)
        for x0, y0, x1, y1 in sample.boxes:
            inside[max(0, y0 - MARGIN):y1 + MARGIN, max(0, x0 - MARGIN):x1 + MARGIN] = True
            boxes_total += 1
            boxes_changed += bool(changed[y0:y1, x0:x1].mean() > 0.05)
        assert not (changed & ~inside).any(), f"{result['image_id']}: pixels outside the text boxes changed"
    assert boxes_changed == boxes_total, f"{boxes_total - boxes_changed} of {boxes_total} text boxes unchanged"


@pytest.fixture
def not_found() -> Iterator[int]:
    """A local HTTP server answering 404 to everything; its port."""

    class Missing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Missing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_bad_input_ends_as_one_clear_error_each_and_the_pipeline_goes_on(client, stack, tmp_path, not_found):
    good = stack.images / "good.png"
    Image.fromarray(samples.product_image(False, seed=7).image).save(good)
    (stack.images / "text.png").write_bytes(b"this is not an image at all")
    (stack.images / "truncated.png").write_bytes(good.read_bytes()[:2000])
    bomb = Image.new("1", (20_000, 20_000))
    bomb.save(stack.images / "bomb.png", optimize=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes(good.read_bytes())

    def task(rid: str, url: str) -> dict:
        return {"request_id": rid, "image_url": url, "image_id": f"i-{rid}", "is_long": False}

    push(client, [
        b'{"request_id": "bad-json", "image_id": "i-bad-json", "image_url": ',
        orjson.dumps({"request_id": "missing", "image_id": "i-missing"}),
        orjson.dumps({"request_id": "types", "image_url": 7, "image_id": "i-types", "is_long": "yes"}),
        task("not-found", f"http://127.0.0.1:{not_found}/missing.png"),
        task("not-image", (stack.images / "text.png").as_uri()),
        task("truncated", (stack.images / "truncated.png").as_uri()),
        task("bomb", (stack.images / "bomb.png").as_uri()),
        task("private", "http://10.20.30.40/a.png"),
        task("outside", outside.as_uri()),
        task("good", good.as_uri()),
    ])
    stack.wait(lambda: client.llen(ERROR) >= 9 and client.llen(SUCCESS) >= 1, timeout=300)
    errors = {e["request_id"]: e for e in listed(client, ERROR)}
    assert [s["request_id"] for s in listed(client, SUCCESS)] == ["good"]
    expected = {
        "bad-json": "malformed task", "missing": "missing field 'image_url'",
        "types": "field 'image_url' must be a string", "not-found": "returned 404",
        "not-image": "is not a jpeg, png", "truncated": "truncated", "bomb": "pixels",
        "private": "private", "outside": "outside",
    }
    assert set(errors) == set(expected), f"errors for {sorted(errors)}"
    for rid, words in expected.items():
        error = errors[rid]
        assert set(error) == {"request_id", "image_id", "error_message", "timestamp"}
        assert words.lower() in error["error_message"].lower(), f"{rid}: {error['error_message']}"
        assert isinstance(error["timestamp"], int) and error["image_id"] == f"i-{rid}"


def test_kill_9_of_the_operate_worker_loses_and_doubles_nothing(client, stack):
    count = 16
    tasks = []
    for n in range(count):
        path = stack.images / f"k{n}.png"
        Image.fromarray(samples.product_image(False, seed=300 + n).image).save(path)
        tasks.append({"request_id": f"k-{n}", "image_url": path.as_uri(), "image_id": f"k{n}", "is_long": False})
    push(client, tasks)
    stack.wait(lambda: client.llen(SUCCESS) >= 3, timeout=300)
    stack.kill("operate")
    stack.wait(lambda: client.llen(SUCCESS) + client.llen(ERROR) >= count, timeout=300)
    stack.wait(lambda: stack.supervisor.running["operate"].restarts >= 1, timeout=30)
    outcomes = [r["request_id"] for r in listed(client, SUCCESS) + listed(client, ERROR)]
    assert sorted(outcomes) == sorted(f"k-{n}" for n in range(count)), "exactly one outcome per task"
