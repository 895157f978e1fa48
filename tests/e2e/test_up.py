"""`millstream up` as a person runs it: ready, submit, fetch the result, SIGTERM, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from PIL import Image

from processors.local import samples
from streams.redis.server import free_port
from tests.conftest import require_font, require_tool
from tests.support.triton import require_tritonserver
from tests.support.workers import ROOT


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def test_up_serves_results_and_stops_without_leaving_processes(tmp_path: Path):
    require_tool("redis-server")
    require_font(samples.FONT_CANDIDATES[0])
    require_tritonserver()
    port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    log = tmp_path / "up.log"
    with log.open("w") as out:  # a file, not a pipe: nobody reads while it runs
        up = subprocess.Popen([sys.executable, "-m", "streams", "up", "--port", str(port), "--api-port",
                               str(api_port), "--data", str(tmp_path / "up")], cwd=ROOT, env=env, stdout=out,
                              stderr=out)
    try:
        deadline = time.monotonic() + 240
        while any(get(f"http://127.0.0.1:{p}/readyz")[0] != 200 for p in (port, api_port)):
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready within 240 s"
            time.sleep(0.5)
        tree = descendants(up.pid)
        assert len(tree) >= 9, "redis, triton, a worker per stage and bridge, the API"
        image = tmp_path / "shirt.png"
        Image.fromarray(samples.product_image(False, seed=5).image).save(image)
        status = orjson.loads(get(f"http://127.0.0.1:{port}/readyz")[1])
        assert status == {"ready": True, "problems": {}}
        done = subprocess.run([sys.executable, "-m", "streams", "submit", str(image), "--wait",
                               "--data", str(tmp_path / "up"), "--timeout", "180"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=True)
        line = done.stdout.strip().splitlines()[-1]
        assert line.startswith("shirt: success: http://127.0.0.1:"), done.stdout + done.stderr
        code, body = get(line.split(": success: ")[1])
        assert code == 200 and body.startswith(b"\x89PNG")
        assert get(f"http://127.0.0.1:{port}/images/..%2Fsecret.png")[0] == 404
        request_id = done.stdout.split("request_id=")[1].split()[0]
        task = orjson.loads(get(f"http://127.0.0.1:{api_port}/v1/tasks/{request_id}")[1])
        assert task["final"] and task["result"] == "completed", task
        assert task["outcome"]["image_url"] == line.split(": success: ")[1]
        assert [s["stage"] for s in task["history"]][:3] == ["publish", "ocr", "operate"]
        assert get(f"http://127.0.0.1:{api_port}/")[0] == 200  # the dashboard
        metrics = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        assert "millstream_group_lag_entries" in metrics
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
    time.sleep(0.5)
    left = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
    assert left == [], f"processes left behind: {left}"
