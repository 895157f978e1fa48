"""The spool's Prometheus collectors, on a registry passed in (named as streams.metrics names its own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

_LABELS = ["pipeline"]


class SpoolMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(f"millstream_spool_{name}", doc, _LABELS, registry=registry)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"millstream_spool_{name}", doc, _LABELS, registry=registry)

        self.spooled = counter("spooled", "Tasks written to the producer spool: Redis was unreachable.")
        self.drained = counter("drained", "Spooled tasks published to Redis and removed from the spool.")
        self.refused = counter("refused", "Tasks refused with SpoolFull: Redis unreachable, the spool full.")
        self.drain_failures = counter("drain_failures", "Drain tries that failed (Redis still unreachable, "
                                      "or it refused the publish); the tasks stay spooled.")
        self.depth = gauge("depth", "Tasks held in the producer spool.")
        self.bytes = gauge("bytes", "Bytes held in the producer spool (payloads, request ids, stream names).")
