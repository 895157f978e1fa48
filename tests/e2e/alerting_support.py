"""Real Prometheus, Alertmanager, a webhook receiver and the millstream exporter, for the alerting test.

Every server listens on a free loopback port with its files in a directory of
the test, and ``stop()`` terminates it and waits. Prometheus loads the rules
that ``deploy/render.py`` renders from deploy/thresholds.toml, with every
duration scaled by ``SCALE``; Alertmanager gets deploy's routes and
inhibitions with a webhook URL and short timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from deploy import _yaml
from deploy.alertmanager.config import Timing, config
from deploy.render import rule_files
from deploy.thresholds import Thresholds, load
from streams.service.processes import terminate
from tests.support.redis_server import free_port
from tests.support.workers import ROOT

SCALE = 0.01  # minutes become seconds: `for: 5m` -> 3s
T = TypeVar("T")


def scaled_thresholds() -> Thresholds:
    return load().scaled(SCALE)


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {result!r})")
        time.sleep(every)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Server:
    """A subprocess serving HTTP on ``127.0.0.1:port``, logging to a file in ``directory``."""

    def __init__(self, name: str, command: Sequence[str], directory: Path, port: int,
                 ready_path: str, env: Mapping[str, str] | None = None) -> None:
        self.name, self.port, self.url = name, port, f"http://127.0.0.1:{port}"
        self.log_path = directory / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=directory, env=dict(env) if env is not None else None)
        try:
            wait_for(lambda: self.process.poll() is not None or responds(self.url + ready_path), 30,
                     f"{name} ready")
            if self.process.poll() is not None:
                raise AssertionError(f"{name} exited {self.process.returncode}:\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        terminate(self.process)
        self._log.close()


class Prometheus(Server):
    def __init__(self, binary: str, directory: Path, thresholds: Thresholds,
                 targets: Mapping[str, str], alertmanager: str) -> None:
        rules = []
        for name, text in rule_files(thresholds).items():
            (directory / name).write_text(text)
            rules.append(str(directory / name))
        settings = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": rules,
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                               for job, target in targets.items()],
        }
        (directory / "prometheus.yml").write_text(_yaml.dump(settings))
        port = free_port()
        super().__init__("prometheus", [
            binary, f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ], directory, port, "/-/ready")

    def alerts(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts named ``alertname`` with these labels."""
        found = get_json(self.url + "/api/v1/alerts")["data"]["alerts"]
        return [a for a in found if a["labels"].get("alertname") == alertname
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return list(get_json(url)["data"]["result"])


class Alertmanager(Server):
    def __init__(self, binary: str, directory: Path, webhook_url: str) -> None:
        settings = config(webhook_url, webhook_url, Timing("1s", "1s", "1h"))
        (directory / "alertmanager.yml").write_text(_yaml.dump(settings))
        port = free_port()
        super().__init__("alertmanager", [
            binary, f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=warn",
        ], directory, port, "/-/ready")


class Exporter(Server):
    """``python -m streams exporter`` for one namespace, sampling every half second."""

    def __init__(self, directory: Path, redis_url: str, namespace: str) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
        env.update(PYTHONPATH=str(ROOT), MILLSTREAM_REDIS_URL=redis_url, MILLSTREAM_NAMESPACE=namespace,
                   MILLSTREAM_METRICS_PORT=str(port), MILLSTREAM_METRICS_HOST="127.0.0.1",
                   MILLSTREAM_STATS_INTERVAL="0.5")
        super().__init__("exporter", [sys.executable, "-m", "streams", "exporter"], directory, port,
                         "/metrics", env)


class WebhookReceiver:
    """An HTTP server in a thread that keeps every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, status: str, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """Alerts delivered with ``status`` ("firing" or "resolved") matching the labels."""
        return [a for n in list(self.notifications) for a in n["alerts"]
                if a["status"] == status and a["labels"].get("alertname") == alertname
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
