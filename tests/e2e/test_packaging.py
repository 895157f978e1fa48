"""The wheel, installed as a user installs it: in fresh virtual environments, outside the checkout.

* ``pip install millstream`` alone runs any pipeline: ``millstream worker`` moves entries through a
  pipeline defined outside the project, ``status``, ``dlq list`` and ``exporter`` report on it, and
  none of it needs the image pipeline's extras (aiohttp, numpy, Pillow are not installed).
* With the image extras, ``millstream up --demo`` runs the whole image pipeline from the wheel.

The environments are built once per test session (pip's cache keeps it to about a minute).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import free_port
from streams.settings import Settings
from tests.conftest import require_font, require_tool
from tests.support.pipelines import wait_for, xlen_at_least
from tests.support.triton import require_tritonserver
from tests.support.workers import ROOT

PIPELINE = '''
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.stage import Stage


async def shout(message: Message) -> list[Outgoing]:
    if message.payload.get("bad"):
        raise ValueError("cannot shout this")
    return [Outgoing({"text": message.payload["text"].upper()})]


def build(settings) -> Pipeline:
    return Pipeline("shouting", [Stage("shout", "words", shout, sinks=["loud"], max_attempts=1)])
'''


def _run(command: list[str], cwd: Path, timeout: float = 900, **kwargs: object) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILLSTREAM_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], cwd=out)
    (built,) = out.glob("millstream-*.whl")
    return built


def _venv(where: Path, *requirements: str) -> Path:
    _run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    for requirement in requirements:
        _run([str(where / "bin" / "pip"), "install", "-q", requirement], cwd=where.parent, env=_clean_env())
    return where / "bin"


@pytest.fixture(scope="session")
def core_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("core") / "venv", str(wheel))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the checkout holding a user's own pipeline module."""
    (tmp_path / "shouting.py").write_text(PIPELINE)
    return tmp_path


def _cli(bin_dir: Path, cwd: Path, settings: Settings, *args: str) -> str:
    env = _clean_env(MILLSTREAM_REDIS_URL=settings.redis_url, MILLSTREAM_NAMESPACE="mst", PYTHONPATH=str(cwd))
    return _run([str(bin_dir / "millstream"), *args], cwd=cwd, timeout=60, env=env)


USER_TEST = '''
import asyncio

from shouting import build
from streams.settings import Settings
from streams.testing import run_pipeline


async def main() -> None:
    async with run_pipeline(build(Settings())) as run:
        await run.publish("words", {"text": "hi"}, "w1")
        await run.publish("words", {"bad": True}, "w2")
        await run.drained()
        print(run.stream("loud"), run.status("w1")["state"], [d.request_id for d in run.dead_letters("shout")])

asyncio.run(main())
'''


def test_the_core_install_runs_a_users_pipeline_in_process_with_streams_testing(core_bin: Path, outside: Path):
    """The in-memory test double ships in the wheel: a user tests a pipeline without a Redis server."""
    (outside / "check_shouting.py").write_text(USER_TEST)
    printed = _run([str(core_bin / "python"), "check_shouting.py"], cwd=outside, timeout=60,
                   env=_clean_env(PYTHONPATH=str(outside)))
    assert printed.strip() == "[{'text': 'HI'}] forwarded ['w2']"


def test_the_core_install_has_none_of_the_image_extras(core_bin: Path, outside: Path):
    probe = "import importlib.util as u; print([m for m in ('aiohttp', 'numpy', 'PIL') if u.find_spec(m)])"
    assert _run([str(core_bin / "python"), "-c", probe], cwd=outside).strip() == "[]"
    located = _run([str(core_bin / "python"), "-c", "import streams; print(streams.__file__)"], cwd=outside)
    assert not located.startswith(str(ROOT)), "the wheel, not the checkout, must be imported"


async def test_the_core_install_runs_reports_and_exports_a_users_pipeline(
        core_bin: Path, outside: Path, redis: Redis, settings: Settings):
    keys = Keys("mst", "shouting")
    worker = _start_worker(core_bin, outside, settings)
    try:
        await Publisher(redis, keys).publish_many("words", [({"text": "hi"}, "w1"), ({"bad": True}, "w2")])
        await wait_for(lambda: xlen_at_least(redis, keys.stream("loud"), 1), timeout=60)
        await wait_for(lambda: xlen_at_least(redis, keys.dlq("shout"), 1), timeout=60)
        status = orjson.loads(await asyncio.to_thread(_cli, core_bin, outside, settings, "status", "--json"))
        assert {"shouting"} <= {s["pipeline"] for s in status["streams"]}
        letters = orjson.loads(await asyncio.to_thread(
            _cli, core_bin, outside, settings, "dlq", "list", "--pipeline", "shouting", "--json"))
        assert [letter["request_id"] for letter in letters["letters"]] == ["w2"]
        assert "cannot shout this" in letters["letters"][0]["last_error"]
        assert await asyncio.to_thread(_scrape_exporter, core_bin, outside, settings)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(worker.communicate, timeout=60)
    assert worker.returncode == 0, output


def _start_worker(core_bin: Path, cwd: Path, settings: Settings) -> subprocess.Popen[str]:
    env = _clean_env(MILLSTREAM_REDIS_URL=settings.redis_url, MILLSTREAM_NAMESPACE="mst",
                     MILLSTREAM_METRICS_PORT="0", PYTHONPATH=str(cwd))
    return subprocess.Popen([str(core_bin / "millstream"), "worker", "shouting:build"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _scrape_exporter(core_bin: Path, cwd: Path, settings: Settings) -> bool:
    port = free_port()
    env = _clean_env(MILLSTREAM_REDIS_URL=settings.redis_url, MILLSTREAM_NAMESPACE="mst",
                     MILLSTREAM_METRICS_PORT=str(port), MILLSTREAM_STATS_INTERVAL="0.2")
    exporter = subprocess.Popen([str(core_bin / "millstream"), "exporter"], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    text = response.read().decode()
                if 'millstream_dlq_length{pipeline="shouting"' in text:
                    return True
            except OSError:
                pass
            time.sleep(0.3)
        return False
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


@pytest.fixture(scope="session")
def image_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # torch first and pinned: the CPU build comes from a local file on these machines.
    yield _venv(tmp_path_factory.mktemp("images") / "venv", "torch==2.13.0", f"{wheel}[pipeline,triton]")


def test_the_image_install_runs_the_demo_outside_the_checkout(image_bin: Path, tmp_path: Path):
    require_tool("redis-server")
    require_font("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    require_tritonserver()
    out = _run([str(image_bin / "millstream"), "up", "--demo", "--port", str(free_port()),
                "--data", str(tmp_path / "up")], cwd=tmp_path, timeout=600, env=_clean_env())
    translated = [line for line in out.splitlines() if ": translated -> http://127.0.0.1:" in line]
    assert len(translated) == 3, out  # two short product images and a long one
    assert list((tmp_path / "up").rglob("*.png")), "the translated images are stored under --data"
    located = _run([str(image_bin / "python"), "-c", "import processors; print(processors.__file__)"],
                   cwd=tmp_path)
    assert not located.startswith(str(ROOT))


def test_the_wheel_ships_the_model_repository(wheel: Path):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("inpaint_short", "inpaint_long"):
        assert {f"triton_models/{model}/config.pbtxt", f"triton_models/{model}/1/model.py"} <= names
    assert "streams/redis/functions/millstream.lua" in names


