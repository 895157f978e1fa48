"""KillablePool: blocking work in worker processes that a timeout really stops.

A thread cannot be stopped: when a handler times out, its thread runs on,
holding its CPU and its memory. A process can. ``await pool.run(fn, *args,
timeout=s)`` runs the module-level function ``fn`` in one of ``workers`` child
processes (fresh interpreters, streams.killable.child), its arguments and
result sent as frames (streams.killable.frames: JSON, raw bytes, numeric
arrays; never pickle). The guarantees:

* Past ``timeout``, or when the awaiting task is cancelled (the stage's
  watchdog, a shutdown, a cancel), the process is stopped (SIGTERM, SIGKILL
  after ``grace`` seconds) and a fresh one is started at once in its slot:
  the next call waits only for that start. ``run`` raises ``HardTimeout``
  (retryable) or re-raises the cancellation.
* A process that dies on its own (a crash, a kill for memory) or answers with a
  malformed frame is replaced; ``run`` raises ``WorkerLost`` (retryable), saying
  how it ended.
* What ``fn`` raises comes back as ``RemoteError`` (type name, message, traceback
  text), ``RemotePermanentError`` / ``RemoteRetryableError`` when it was a
  ``PermanentError`` / ``RetryableError``; the process lives on.
* ``aclose`` (or ``kill``, synchronously) ends every process; none outlives
  the pool, nor its parent (the children die with it).

``timeout`` counts from the moment the call is sent: waiting for a free
process, or for one to start, is not part of it. ``initializer(*initargs)``
runs once in each process before its first call (load a model there);
after ``max_tasks_per_child`` calls a process is replaced.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import streams.killable.frames as frames
from streams.errors import HardTimeout, RemoteError, RemotePermanentError, RemoteRetryableError, WorkerLost
from streams.killable.process import Worker

START_TIMEOUT = 120.0  # seconds a process may take to start and run its initializer


def function_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a module-level function (what a worker process can import)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise ValueError(f"{fn!r} is not a module-level function of an importable module")
    return f"{module}:{qualname}"


class KillablePool:
    """``workers`` processes running module-level functions; see the module docstring."""

    def __init__(self, workers: int = 1, initializer: Callable[..., Any] | None = None,
                 initargs: Sequence[Any] = (), *, max_tasks_per_child: int | None = None,
                 grace: float = 0.5, max_frame_bytes: int = frames.MAX_FRAME_BYTES) -> None:
        if workers < 1 or (max_tasks_per_child is not None and max_tasks_per_child < 1):
            raise ValueError("a pool needs workers >= 1 and max_tasks_per_child >= 1 (or None)")
        self.workers, self.grace, self.max_tasks_per_child = workers, grace, max_tasks_per_child
        self._limit = max_frame_bytes
        specs, buffers = frames.pack(list(initargs))
        self._hello = frames.encode({"path": sys.path, "initargs": specs, "initializer":
                                     function_name(initializer) if initializer else None}, buffers)
        self._free: collections.deque[asyncio.Future[Worker]] = collections.deque()
        self._available: asyncio.Semaphore | None = None
        self._live: set[Worker] = set()
        self._starting: set[asyncio.Task[Worker]] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The live worker processes, in no order."""
        return sorted(w.pid for w in self._live)

    async def start(self) -> None:
        """Start every process now (else the first calls do); raises if one fails to start."""
        self._slots()
        await asyncio.gather(*(asyncio.shield(slot) for slot in list(self._free)))

    async def run(self, fn: Callable[..., Any], *args: Any,
                  timeout: float | None = None) -> Any:  # noqa: ASYNC109 - a kill, not a cancel
        """``fn(*args)`` in a worker process; see the module docstring for what it raises."""
        name = function_name(fn)
        specs, buffers = frames.pack(args)
        chunks = frames.encode({"call": name, "args": specs}, buffers)
        available = self._slots()
        await available.acquire()
        slot = self._take()
        try:
            worker = await asyncio.shield(slot)
        except asyncio.CancelledError:
            self._give_back(slot)  # still starting: the next call takes it
            raise
        except BaseException:
            self._give_back(self._spawn())
            raise
        try:
            value, error = _outcome(await self._call(worker, name, chunks, timeout), name, worker)
        except BaseException:
            self._give_back(self._replace(worker))
            raise
        self._give_back(self._after_call(worker))
        if error is not None:
            raise error
        return value

    async def _call(self, worker: Worker, name: str, chunks: list[frames.Buffer],
                    timeout: float | None) -> frames.Frame:  # noqa: ASYNC109 - as run's
        try:
            async with asyncio.timeout(timeout):
                return await worker.exchange(chunks)
        except TimeoutError:
            raise HardTimeout(timeout or 0.0, worker.pid, name) from None
        except WorkerLost as lost:
            raise WorkerLost(lost.pid, name, lost.reason) from None

    def _slots(self) -> asyncio.Semaphore:
        if self._closed:
            raise RuntimeError("the pool is closed")
        if self._available is None:
            self._available = asyncio.Semaphore(self.workers)
            self._free.extend(self._spawn() for _ in range(self.workers))
        return self._available

    def _take(self) -> asyncio.Future[Worker]:
        """A ready process if there is one, else the one started first."""
        for slot in self._free:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._free.remove(slot)
                return slot
        return self._free.popleft()

    def _give_back(self, slot: asyncio.Future[Worker]) -> None:
        if self._closed:
            slot.cancel()
            return
        self._free.append(slot)
        assert self._available is not None
        self._available.release()

    def _after_call(self, worker: Worker) -> asyncio.Future[Worker]:
        worker.calls += 1
        if self.max_tasks_per_child and worker.calls >= self.max_tasks_per_child:
            return self._replace(worker)
        ready: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        ready.set_result(worker)
        return ready

    def _replace(self, worker: Worker) -> asyncio.Future[Worker]:
        """Stop ``worker`` in the background; a fresh process takes its slot at once."""
        self._retire(worker, self.grace)
        return self._spawn()

    def _retire(self, worker: Worker, grace: float) -> None:
        self._live.discard(worker)
        stopping = asyncio.ensure_future(worker.stop(grace))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)

    def _spawn(self) -> asyncio.Future[Worker]:
        if self._closed:  # a call that failed during aclose: nothing is started any more
            closed: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
            closed.cancel()
            return closed
        task = asyncio.ensure_future(self._start_one())
        self._starting.add(task)
        task.add_done_callback(self._started)
        return task

    def _started(self, task: asyncio.Task[Worker]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is None and self._closed:
            self._retire(task.result(), 0)

    async def _start_one(self) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.killable.child", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        worker = Worker(process, self._limit)
        self._live.add(worker)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                hello = await worker.exchange(self._hello)
        except BaseException as error:
            self._retire(worker, 0)
            if isinstance(error, TimeoutError):
                raise worker.lost(f"it did not start within {START_TIMEOUT:g} s", "the initializer") from None
            if isinstance(error, WorkerLost):
                raise worker.lost(error.reason, "the initializer") from None
            raise
        if hello.header.get("ready") is not True:
            self._retire(worker, 0)
            failure = hello.header.get("error") or {}
            raise worker.lost(f"its initializer failed: {failure.get('type')}: {failure.get('message')}",
                              "the initializer")
        return worker

    def kill(self) -> None:
        """SIGKILL every process now and close the pool (for a synchronous shutdown path)."""
        self._closed = True
        for worker in self._live:
            worker.signal(signal.SIGKILL)
            worker.close()
        for slot in self._free:
            slot.cancel()

    async def aclose(self) -> None:
        """Kill every process and wait until each is reaped."""
        self.kill()
        await asyncio.gather(*self._starting, return_exceptions=True)
        live, self._live = list(self._live), set()
        await asyncio.gather(*(w.stop(0) for w in live), *self._stopping, return_exceptions=True)

    async def settled(self) -> None:
        """Wait until the processes being replaced are reaped (their memory is back)."""
        await asyncio.gather(*self._stopping, return_exceptions=True)

    def rss(self) -> int:
        """Resident bytes of the live processes together (Linux /proc), for tests and metrics."""
        return sum(resident_bytes(pid) for pid in self.pids)

    async def __aenter__(self) -> KillablePool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def resident_bytes(pid: int) -> int:
    """VmRSS of ``pid`` from /proc, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _outcome(reply: frames.Frame, name: str, worker: Worker) -> tuple[Any, RemoteError | None]:
    """The call's result, or the error the function raised; WorkerLost for a reply this
    protocol does not send (the process is then replaced, as for a malformed frame)."""
    if "result" in reply.header:
        try:
            return frames.unpack_one(reply.header["result"], reply.buffers), None
        except frames.FrameError as bad:
            raise worker.lost(f"it sent a malformed result: {bad}", name) from None
    failure = reply.header.get("error")
    if not isinstance(failure, dict):
        raise worker.lost(f"it sent neither a result nor an error: {sorted(reply.header)}", name)
    kind = {"permanent": RemotePermanentError, "retryable": RemoteRetryableError}.get(
        str(failure.get("kind")), RemoteError)
    return None, kind(str(failure.get("type")), str(failure.get("message", "")),
                      str(failure.get("traceback", "")))
