"""The /metrics endpoint of a worker or the exporter."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from streams.settings import Settings

log = logging.getLogger("millstream.worker")


def serve_metrics(settings: Settings, registry: CollectorRegistry) -> None:
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
        except OSError as error:
            raise SystemExit(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({error}); "
                "set MILLSTREAM_METRICS_PORT to a free port, or 0 to turn the endpoint off"
            ) from None
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
