"""The image-translation stack for end-to-end tests: every stage and the bridge as real processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from processors.pipeline import build
from streams.service.supervisor import Child, Supervisor
from streams.settings import Settings
from tests.support.workers import ROOT


class ImgtrStack:
    def __init__(self, redis_url: str, triton_url: str, namespace: str, directory: Path, **env: str) -> None:
        self.images, self.out = directory / "images", directory / "out"
        self.images.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PYTHONPATH": str(ROOT), "MILLSTREAM_REDIS_URL": redis_url, "MILLSTREAM_NAMESPACE": namespace,
            "MILLSTREAM_TRITON_URL": triton_url, "MILLSTREAM_FILE_ROOTS": str(self.images),
            "MILLSTREAM_STORE_DIR": str(self.out), "MILLSTREAM_PUBLIC_URL": "http://127.0.0.1:8080",
            "MILLSTREAM_METRICS_PORT": "0", "MILLSTREAM_HEARTBEAT_TTL": "2", "MILLSTREAM_CLAIM_INTERVAL": "0.5",
            **env,
        }
        self.supervisor = Supervisor(directory / "logs", grace=15)
        pipeline = build(Settings(metrics_port=0))
        for part in [*(s.name for s in pipeline.stages), *(b.name for b in pipeline.bridges)]:
            command = [sys.executable, "-m", "streams", "worker", "processors.pipeline:build",
                       "--stage", part, "--consumer", f"e2e-{part}"]
            clean = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
            self.supervisor.start(Child(part, command, {**clean, **self.env}))

    def kill(self, part: str) -> int:
        pid = self.supervisor.running[part].process.pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait(self, check: object, timeout: float) -> None:
        """Poll ``check()`` (restarting crashed workers meanwhile) until it holds."""
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            self.supervisor.poll()
            if time.monotonic() > deadline:
                raise AssertionError(f"not done within {timeout}s; logs in {self.supervisor.log_dir}")
            time.sleep(0.2)

    def stop(self) -> dict[str, int]:
        return self.supervisor.stop()
