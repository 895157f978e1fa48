"""A worker's memory budget across the tasks it holds, and what one task reserves from it.

``MemoryBudget`` is an asyncio weighted semaphore over bytes. ``reserve(n)``
waits until ``n`` bytes are free, then holds them for the ``async with``
block. Waiters are served in arrival order (FIFO): a large request is not
starved by a stream of small ones that would each fit, because nothing
behind it is admitted before it. A request larger than the whole budget is
clamped to the budget, so it runs alone rather than never. A budget of 0
is unbounded: ``reserve`` never waits. The reserved bytes are released on
every exit from the block (return, exception, cancellation); a waiter
cancelled before it was served takes nothing and lets those behind it on.
A thread cannot be cancelled: work run through the block's ``Reservation``
(``in_thread``, ``hold``) keeps the bytes held until its thread has ended,
even when the block was left early (a timeout), because its arrays live
until then.

What a task reserves is computed from the image's header size, before a
pixel is decoded (``operate_bytes``, ``ocr_bytes``), from the peaks
measured in docs/MEMORY.md (each constant says where it comes from).
Single event loop only, like every asyncio primitive.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

__all__ = ["MemoryBudget", "Reservation", "ocr_bytes", "operate_bytes"]

T = TypeVar("T")

MIB = 1024 * 1024

# operate (docs/MEMORY.md): 799 MiB at 40 M pixels and 335 MiB at 15.8 M give 20 bytes a pixel with
# Triton as the identity; through the real OperateProcessor with an eraser for Triton, 461 MiB at
# 16 M and 162 MiB at 4 M, 25 (the decoded image, its mask, the cleaned copy, the rendered copy and
# the PNG encoder's rows); 27 rounds the larger up. The tile plan grows with the long side only:
# 15 x 30000 peaked at 97 MiB and 10000 x 5 at 43 MiB for almost no pixels, 3.0-4.4 KiB per pixel
# of the long side (tiles, masks and the tiles coming back); 4.5 KiB rounds it up. 32 MiB per task:
# a second 1000 x 1000 task took 53 MiB, 23 over the two terms (glyphs, PIL's drawing state). A
# worker's first render costs ~65 MiB once more (fonts): fixed overhead, not reserved.
OPERATE_BYTES_PER_PIXEL = 27
OPERATE_BYTES_PER_LONG_SIDE_PIXEL = 4608
OPERATE_TASK_BYTES = 32 * MIB

# ocr: its decode peaks at 382 MiB for 40 M pixels (9.6 bytes a pixel, 10 rounds it up); the OCR
# engine's working set is bounded by construction (processors/stages/ocr_fit.py) whatever the size: the
# largest measured, 919 MiB at 6324 x 6324, less the 120 MiB decoded image it held, is 800 MiB
# (first-inference costs included, which a warm worker no longer pays).
OCR_DECODE_BYTES_PER_PIXEL = 10
OCR_ENGINE_BYTES = 800 * MIB


def operate_bytes(width: int, height: int) -> int:
    """Bytes one operate task on a ``width`` x ``height`` image holds at its peak (upper bound)."""
    return (OPERATE_TASK_BYTES + OPERATE_BYTES_PER_PIXEL * width * height
            + OPERATE_BYTES_PER_LONG_SIDE_PIXEL * max(width, height))


def ocr_bytes(width: int, height: int) -> int:
    """Bytes one ocr task on a ``width`` x ``height`` image holds at its peak (upper bound)."""
    return OCR_ENGINE_BYTES + OCR_DECODE_BYTES_PER_PIXEL * width * height


class Reservation:
    """The bytes one ``reserve`` block holds, and the thread work that keeps them held."""

    __slots__ = ("_pending", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._pending: list[asyncio.Future[Any]] = []

    async def in_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` in the loop's default thread pool, in this task's context (as
        ``asyncio.to_thread``); the bytes stay held until it returns."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await self.hold(asyncio.get_running_loop().run_in_executor(None, call))

    async def hold(self, future: asyncio.Future[T]) -> T:
        """Await ``future`` (thread work); if the block is left first, the bytes wait for it."""
        self._pending.append(future)
        return await asyncio.shield(future)

    def running(self) -> list[asyncio.Future[Any]]:
        """The held work not finished yet."""
        return [future for future in self._pending if not future.done()]


class MemoryBudget:
    """``total`` bytes shared by the tasks of one worker; ``total == 0``: unbounded."""

    def __init__(self, total: int) -> None:
        if total < 0:
            raise ValueError(f"a memory budget is a number of bytes >= 0, not {total}")
        self.total = total
        self._used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def used(self) -> int:
        """Bytes held now by the blocks inside ``reserve``."""
        return self._used

    @property
    def waiting(self) -> int:
        """How many ``reserve`` calls are waiting for bytes."""
        return len(self._waiters)

    def clamp(self, size: int) -> int:
        """The bytes a request of ``size`` takes: at least 0, at most the whole budget."""
        return max(0, size) if self.total == 0 else min(max(0, size), self.total)

    @asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[Reservation]:
        """Hold ``size`` bytes (clamped) for the block; waits, FIFO, until they are free.
        Released when the block is left and the work held through the reservation has ended."""
        reservation = Reservation(self.clamp(size))
        if self.total:
            await self._acquire(reservation.size)
        try:
            yield reservation
        finally:
            self._release_after(reservation)

    def _release_after(self, reservation: Reservation) -> None:
        running = reservation.running()
        if not running:
            self._release(reservation.size)
            return
        left = len(running)

        def ended(future: asyncio.Future[Any]) -> None:
            nonlocal left
            if not future.cancelled():
                future.exception()  # retrieved: the block that awaited it is gone
            left -= 1
            if left == 0:
                self._release(reservation.size)

        for future in running:
            future.add_done_callback(ended)

    def _release(self, size: int) -> None:
        if self.total:
            self._used -= size
            self._wake()

    async def _acquire(self, size: int) -> None:
        if not self._waiters and self._used + size <= self.total:
            self._used += size
            return
        served: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, served)
        self._waiters.append(entry)
        try:
            await served
        except asyncio.CancelledError:
            if served.done() and not served.cancelled():
                self._used -= size  # served, then cancelled before it could run: give the bytes back
            elif entry in self._waiters:
                self._waiters.remove(entry)
            self._wake()  # whoever was behind it may fit now
            raise

    def _wake(self) -> None:
        """Serve waiters from the head of the queue while the head fits."""
        while self._waiters:
            size, served = self._waiters[0]
            if served.done():  # its task was cancelled while waiting: it takes nothing
                self._waiters.popleft()
                continue
            if self._used + size > self.total:
                return
            self._waiters.popleft()
            self._used += size
            served.set_result(None)
