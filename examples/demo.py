"""The README's demo: an embedded redis-server, one worker process per stage, 1,000 tasks.

Prints the status table and one result, then stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.codec import decode
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "the quick brown fox jumps over the lazy dog", "to be or not to be", "streams flow and the mill turns",
]
COUNT = 1000


async def publish_and_wait(settings: Settings, keys: Keys) -> None:
    redis = connect(settings)
    await library.load(redis)
    run = int(time.time())  # request ids are deduplicated: a rerun needs new ones
    items = [({"text": SENTENCES[i % 3]}, f"demo-{run}-{i}") for i in range(COUNT)]
    target = await redis.xlen(keys.stream("counts")) + COUNT
    started = time.perf_counter()
    await Publisher(redis, keys).publish_many("sentences", items)
    print(f"published {COUNT} tasks to {keys.stream('sentences')}")
    while await redis.xlen(keys.stream("counts")) < target:  # noqa: ASYNC110 - progress lives in Redis
        await asyncio.sleep(0.05)
    print(f"all {COUNT} tasks went through both stages in {time.perf_counter() - started:.2f}s")
    [(_, fields)] = await redis.xrevrange(keys.stream("counts"), count=1)
    print(f"a result: {decode(fields)[0]}")
    await redis.aclose()


def main() -> None:
    data = ROOT / "var" / "demo"
    with EmbeddedRedis(data / "redis", appendonly=True) as server:
        print(f"redis-server running at {server.url} (data in {data / 'redis'})")
        env = {**os.environ, "MILLSTREAM_REDIS_URL": server.url, "MILLSTREAM_METRICS_PORT": "0",
               "PYTHONPATH": str(ROOT)}
        workers = [
            subprocess.Popen([sys.executable, "-m", "streams", "worker", "examples.wordcount:build",
                              "--stage", stage, "--consumer", f"demo-{stage}"], env=env, cwd=ROOT)
            for stage in ("words", "count")
        ]
        try:
            settings = Settings(redis_url=server.url)
            asyncio.run(publish_and_wait(settings, Keys(settings.namespace, "wordcount")))
            subprocess.run([sys.executable, "-m", "streams", "status"], env=env, cwd=ROOT, check=True)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
    print("demo finished: workers and redis-server stopped")


if __name__ == "__main__":
    main()
