"""What a worker's /healthz and /readyz answer (docs/decisions/0042-worker-health-endpoint.md).

* **live** (``/healthz``): the event loop turns, no part (stage runner or
  bridge) ended while the worker was not stopping, and Redis answered a PING
  within the heartbeat TTL. Past that TTL the consumer's heartbeat key has
  expired too: its peers count it as dead and claim its entries, so the
  process is of no use to the pipeline until it reaches Redis again.
* **ready** (``/readyz``): live, not stopping, and every part has joined its
  group and runs (a stage runner once ``started`` is set: group created,
  fence token read, first heartbeat written). A paused stage stays ready: the
  pause is an operator's, not a fault of the pod.

The event loop writes the state (``track``, ``probe``, ``stopping``); the
HTTP thread of streams.service.endpoint only reads it, through ``report``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streams.engine.runner import StageRunner
from streams.redis.bridge import IngressRunner

STARTING, RUNNING, STOPPED, FAILED = "starting", "running", "stopped", "failed"


class Pinger(Protocol):
    def ping(self) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Report:
    """One answer of the endpoint: HTTP 200 when ``ok``, else 503, with ``body`` as JSON."""

    ok: bool
    body: dict[str, Any]


class Health:
    def __init__(self, heartbeat_ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat_ttl, self._clock = heartbeat_ttl, clock
        self._parts: dict[str, str] = {}
        self._lock = threading.Lock()  # the HTTP thread copies the parts while the loop adds one
        self.is_stopping = False
        # Start-up counts as an answer: a worker gets one TTL to reach Redis (probes allow more).
        self._answered = clock()
        self._turned = clock()
        self._error = ""

    # -- written by the event loop ---------------------------------------------------------

    async def track(self, name: str, run: Awaitable[None], started: asyncio.Event | None = None) -> None:
        """Await ``run`` (a part's ``run()``), recording its state; ``started`` set means joined.

        A part without a ``started`` event counts as joined once it runs.
        """
        self._set(name, STARTING)
        waiter = asyncio.ensure_future(self._joined(name, started)) if started is not None else None
        if waiter is None:
            self._set(name, RUNNING)
        try:
            await run
        except BaseException:
            self._set(name, FAILED)
            raise
        else:
            self._set(name, STOPPED)
        finally:
            if waiter is not None:
                waiter.cancel()

    async def _joined(self, name: str, started: asyncio.Event) -> None:
        await started.wait()
        if self._parts.get(name) == STARTING:
            self._set(name, RUNNING)

    def _set(self, name: str, state: str) -> None:
        with self._lock:
            self._parts[name] = state

    @property
    def parts(self) -> dict[str, str]:
        """Each part's state: starting, running, stopped or failed (a copy)."""
        with self._lock:
            return dict(self._parts)

    def stopping(self) -> None:
        """The worker was asked to stop (SIGTERM): not ready any more, and parts may end."""
        self.is_stopping = True

    async def probe(self, redis: Pinger, stop: asyncio.Event) -> None:
        """PING Redis every third of the heartbeat TTL until ``stop`` is set."""
        interval = self.heartbeat_ttl / 3
        while not stop.is_set():
            self._turned = self._clock()
            try:
                async with asyncio.timeout(interval):
                    await redis.ping()
                self._answered, self._error = self._clock(), ""
            except Exception as error:  # noqa: BLE001 - an outage is what this records, not a crash
                self._error = f"{type(error).__name__}: {error}"[:300]
            try:
                async with asyncio.timeout(interval):
                    await stop.wait()
            except TimeoutError:
                pass

    # -- read by the HTTP thread ------------------------------------------------------------

    def live(self) -> Report:
        now = self._clock()
        problems = [f"{name} {state}" for name, state in self.parts.items()
                    if state == FAILED or (state == STOPPED and not self.is_stopping)]
        silent = now - self._answered
        if silent > self.heartbeat_ttl:
            error = f": {self._error}" if self._error else ""
            problems.append(f"Redis has not answered for {silent:.1f}s "
                            f"(heartbeat TTL {self.heartbeat_ttl:g}s){error}")
        stalled = now - self._turned
        if stalled > self.heartbeat_ttl:
            problems.append(f"the event loop has not run the probe for {stalled:.1f}s")
        return self._report(not problems, problems, silent)

    def ready(self) -> Report:
        live = self.live()
        problems = list(live.body["problems"])
        if self.is_stopping:
            problems.append("stopping")
        parts = self.parts
        if not parts:
            problems.append("no stage or bridge runs yet")
        problems += [f"{name} {state}" for name, state in parts.items() if state == STARTING]
        return self._report(not problems, problems, live.body["redis_silent_seconds"])

    def _report(self, ok: bool, problems: list[str], silent: float) -> Report:
        return Report(ok, {"status": "ok" if ok else "failing", "problems": problems,
                           "parts": self.parts, "stopping": self.is_stopping,
                           "redis_silent_seconds": round(silent, 3)})


def tracked(health: Health, runner: StageRunner | IngressRunner) -> Awaitable[None]:
    """``runner.run()`` under ``health.track``, named for its stage or bridge."""
    if isinstance(runner, StageRunner):
        return health.track(runner.stage.name, runner.run(), runner.started)
    return health.track(runner.ingress.name, runner.run())
