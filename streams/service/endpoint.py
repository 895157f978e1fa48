"""The HTTP endpoint of a worker or the exporter: /metrics, and a worker's /healthz and /readyz.

One port (``MILLSTREAM_METRICS_PORT``) serves all three, so a pod declares one
container port for the scraper and the probes. Without a ``Health`` (the
exporter) every path serves the metrics, as before the probes existed. The
server runs in a daemon thread: a worker whose event loop hangs still answers,
which is why ``Health`` checks that the loop turns.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from streams.service.health import Health, Report
from streams.settings import Settings

log = logging.getLogger("millstream.worker")
HEALTH_PATHS = ("/healthz", "/readyz")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log; errors still reach stderr."""


def app(registry: CollectorRegistry, health: Health | None = None) -> App:
    """The WSGI app: the probes at HEALTH_PATHS when ``health`` is given, the metrics elsewhere."""
    metrics = make_wsgi_app(registry)

    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if health is None or path not in HEALTH_PATHS:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        return _answer(health.live() if path == "/healthz" else health.ready(), start_response)

    return serve


def _answer(report: Report, start_response: StartResponse) -> list[bytes]:
    body = orjson.dumps(report.body)
    start_response("200 OK" if report.ok else "503 Service Unavailable",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store")])
    return [body]


def _server_class(host: str) -> type[ThreadingWSGIServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingWSGIServer):
        address_family = family

    return Server


def serve_metrics(settings: Settings, registry: CollectorRegistry, health: Health | None = None) -> None:
    """Serve on ``settings.metrics_host:metrics_port`` in a daemon thread; port 0 serves nothing."""
    if not settings.metrics_port:
        return
    try:
        server = make_server(settings.metrics_host, settings.metrics_port, app(registry, health),
                             _server_class(settings.metrics_host), handler_class=_QuietHandler)
    except OSError as error:
        raise SystemExit(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({error}); "
            "set MILLSTREAM_METRICS_PORT to a free port, or 0 to turn the endpoint off"
        ) from None
    threading.Thread(target=server.serve_forever, name="millstream-endpoint", daemon=True).start()
    paths = "/metrics, /healthz, /readyz" if health else "/metrics"
    log.info("%s on http://%s:%d", paths, settings.metrics_host, settings.metrics_port)
