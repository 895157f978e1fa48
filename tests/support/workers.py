"""Worker processes (``python -m streams worker``) for chaos tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.service.processes import terminate
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, redis_url: str, pipeline: str, consumer: str, log_dir: Path,
                 factory: str = "tests.support.factories:copier", **env: str) -> None:
        self.consumer = consumer
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{consumer}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
        environ.update(
            PYTHONPATH=str(ROOT), MSTEST_PIPELINE=pipeline, MILLSTREAM_REDIS_URL=redis_url,
            MILLSTREAM_NAMESPACE="mst", MILLSTREAM_CONSUMER=consumer,
            MILLSTREAM_METRICS_PORT=str(self.metrics_port), MILLSTREAM_METRICS_HOST="127.0.0.1",
            MILLSTREAM_HEARTBEAT_TTL="1", MILLSTREAM_CLAIM_INTERVAL="0.2",
            MILLSTREAM_TRIM_INTERVAL="0.5", MILLSTREAM_SHUTDOWN_GRACE="5", MILLSTREAM_STATS_INTERVAL="0.2",
        )
        environ.update(env)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", factory], cwd=ROOT, env=environ,
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str) -> float:
        """Sum of a metric's samples scraped from the worker's /metrics endpoint."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait(10)

    def ensure_stopped(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            terminate(self.process)
        if not self._log.closed:
            self._log.close()


def wait_until(check: object, timeout: float, every: float = 0.05) -> float:
    """Poll ``check()`` until truthy; return the seconds it took. Fails after ``timeout``."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
    return time.monotonic() - started
