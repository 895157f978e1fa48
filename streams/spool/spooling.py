"""SpoolingPublisher: publish through Redis, or into the spool while Redis is unreachable.

The contract (docs/spool.md):

- Every task gets its request id before the first try (the caller's, or a
  fresh one), and every try sends it with dedup on; so a publish whose reply
  was lost, tried again from the spool, is answered with the first entry's id
  instead of being added twice (ms_publish's dedup records, docs/decisions/0045).
- A publish goes to Redis only while the spool is empty: once anything is
  spooled, later publishes of this process queue behind it, so the spool
  drains in the order tasks were accepted.
- Redis unreachable (connection refused or lost, a timeout, a read-only
  replica during a failover): the batch is spooled whole, in one transaction,
  and ``Accepted(request_id, entry=None)`` is returned per task. Spool full:
  ``SpoolFull`` is raised and nothing of the batch is kept. Any other error (a
  payload too large, a bad stream name, Redis refusing a command) is raised as
  the plain Publisher raises it, nothing spooled.
- ``run`` drains: oldest rows first, in batches of one stream, each deleted only
  once its publish was answered (at-least-once; with the dedup, each task is
  in the stream once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import orjson
from redis import exceptions as redis_errors

from streams.codec import encode_payload
from streams.names import checked
from streams.spool.errors import SpoolFull
from streams.spool.metrics import SpoolMetrics
from streams.spool.settings import SpoolSettings
from streams.spool.store import Row, SpoolStore

log = logging.getLogger("millstream.spool")
T = TypeVar("T")
# What "Redis is unreachable" looks like to redis-py (BusyLoadingError, a restarted server still
# loading its data, is a ConnectionError); OSError covers the builtin ConnectionError and TimeoutError.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError, redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError,
)
RETRY_MIN = 0.05  # the first wait after a failed drain try, doubled up to spool_retry_max


class Publishes(Protocol):
    """What the spool needs of a publisher: streams.redis.publisher.Publisher and MemoryPublisher."""

    @property
    def max_payload_bytes(self) -> int: ...

    async def publish_many(
        self, stream: str, items: Sequence[tuple[Mapping[str, Any], str | None]]
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """A task accepted: its request id, and its entry id, or None while it waits in the spool."""

    request_id: str
    entry: str | None

    @property
    def spooled(self) -> bool:
        return self.entry is None


class SpoolingPublisher:
    """A publisher that spools while Redis is unreachable; see the module doc for the contract."""

    def __init__(self, publisher: Publishes, store: SpoolStore, settings: SpoolSettings,
                 metrics: SpoolMetrics | None = None, pipeline: str = "") -> None:
        self._publisher, self._store, self._settings = publisher, store, settings
        self._metrics = metrics
        self._pipeline = pipeline
        # one thread: SQLite calls block (fsync), and one at a time keeps the rows in order
        self._io_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="millstream-spool")
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._show_depth()

    @classmethod
    def open(cls, publisher: Publishes, settings: SpoolSettings, metrics: SpoolMetrics | None = None,
             pipeline: str = "") -> SpoolingPublisher:
        """Open (or create) the spool file ``settings.spool_path``; what it holds drains from ``run``."""
        store = SpoolStore(Path(settings.spool_path), max_rows=settings.spool_max_rows,
                           max_bytes=settings.spool_max_bytes, synchronous=settings.spool_synchronous)
        return cls(publisher, store, settings, metrics, pipeline)

    @property
    def depth(self) -> int:
        """Tasks waiting in the spool."""
        return self._store.rows

    async def publish(
        self, stream: str, payload: Mapping[str, Any], request_id: str | None = None
    ) -> Accepted:
        return (await self.publish_many(stream, [(payload, request_id)]))[0]

    async def publish_many(
        self, stream: str, items: Sequence[tuple[Mapping[str, Any], str | None]]
    ) -> list[Accepted]:
        """Publish (payload, request_id) pairs atomically, or spool them whole; see the module doc."""
        if not items:
            return []
        named = [(payload, rid or uuid.uuid4().hex) for payload, rid in items]
        if self._store.rows == 0:
            try:
                async with asyncio.timeout(self._settings.spool_attempt_timeout):
                    entries = await self._publisher.publish_many(stream, named)
                return [Accepted(rid, entry) for (_, rid), entry in zip(named, entries, strict=True)]
            except UNREACHABLE as error:
                log.warning("redis unreachable (%s): spooling %d tasks for stream %s",
                            error, len(named), stream)
        await self._spool(stream, named)
        return [Accepted(rid, None) for _, rid in named]

    async def _spool(self, stream: str, named: Sequence[tuple[Mapping[str, Any], str]]) -> None:
        checked("stream", stream)  # a bad name would block the drain later: refuse it now
        limit = self._publisher.max_payload_bytes
        rows = [(rid, encode_payload(payload, limit)) for payload, rid in named]
        try:
            await self._io(self._store.append, stream, rows)
        except SpoolFull:
            if self._metrics:
                self._metrics.refused.labels(self._pipeline).inc(len(rows))
            raise
        if self._metrics:
            self._metrics.spooled.labels(self._pipeline).inc(len(rows))
        self._show_depth()
        self._wake.set()

    async def drain_once(self) -> int:
        """Publish the oldest spooled rows of one stream (up to a batch) and delete them; how many.

        Raises what the publish raised; the rows then stay, to be tried again.
        """
        rows = _one_stream(await self._io(self._store.head, self._settings.spool_drain_batch))
        if not rows:
            return 0
        items = [(orjson.loads(r.payload), r.request_id) for r in rows]
        async with asyncio.timeout(self._settings.spool_attempt_timeout):
            await self._publisher.publish_many(rows[0].stream, items)
        await self._io(self._store.remove, rows)
        if self._metrics:
            self._metrics.drained.labels(self._pipeline).inc(len(rows))
        self._show_depth()
        return len(rows)

    async def run(self) -> None:
        """Drain whenever the spool holds tasks, until cancelled (a service beside the stage runners).

        A failed try is logged and counted and tried again after a backoff that
        doubles up to ``spool_retry_max``; the rows stay spooled.
        """
        delay = 0.0
        while True:
            if self._store.rows == 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self.drain_once()
                delay = 0.0
            except Exception as error:  # noqa: BLE001 - every failure leaves the rows to a later try
                delay = min(self._settings.spool_retry_max, max(RETRY_MIN, delay * 2))
                self._drain_failed(error, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def drained(self) -> None:
        """Return once the spool is empty (a barrier for tests and for a clean shutdown)."""
        await self._empty.wait()

    async def aclose(self) -> None:
        """Close the spool file; what it holds stays there for the next ``open``."""
        await self._io(self._store.close)
        self._io_thread.shutdown(wait=True)

    async def __aenter__(self) -> SpoolingPublisher:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _io(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io_thread, call, *args)

    def _drain_failed(self, error: Exception, delay: float) -> None:
        if self._metrics:
            self._metrics.drain_failures.labels(self._pipeline).inc()
        if isinstance(error, UNREACHABLE):
            log.info("spool drain: redis unreachable (%s); %d tasks wait, next try in %.2fs",
                     error, self._store.rows, delay)
        else:
            log.error("spool drain failed (%r); %d tasks wait, next try in %.2fs",
                      error, self._store.rows, delay)

    def _show_depth(self) -> None:
        if self._store.rows == 0:
            self._empty.set()
        else:
            self._empty.clear()
        if self._metrics:
            self._metrics.depth.labels(self._pipeline).set(self._store.rows)
            self._metrics.bytes.labels(self._pipeline).set(self._store.bytes)


def _one_stream(rows: list[Row]) -> list[Row]:
    """The leading rows of ``rows`` that go to the same stream (one publish_many call)."""
    for n, row in enumerate(rows):
        if row.stream != rows[0].stream:
            return rows[:n]
    return rows
