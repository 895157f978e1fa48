"""One worker process of a KillablePool, and its pipes: send a frame, read the answer, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

import streams.killable.frames as frames
from streams.errors import WorkerLost

WRITE_SLICE = 1024 * 1024


def ended(returncode: int | None) -> str:
    if returncode is None:
        return "it closed its pipe"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:  # a signal Python has no name for (a real-time one)
            name = f"signal {-returncode}"
        hint = " (killed from outside: out of memory?)" if returncode == -signal.SIGKILL else ""
        return f"it died of {name}{hint}"
    return f"it exited with status {returncode}"


class Worker:
    """One child process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process, limit: int) -> None:
        self.process, self.pid, self.limit, self.calls = process, process.pid, limit, 0
        assert process.stdin is not None and process.stdout is not None
        self.requests, self.replies = process.stdin, process.stdout

    async def exchange(self, chunks: Sequence[frames.Buffer]) -> frames.Frame:
        """Send one frame, read the answer; WorkerLost if the process ends or breaks the protocol."""
        try:
            await self._send(chunks)
            reply = await frames.read(self.replies, self.limit)
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        except frames.FrameError as error:
            raise self.lost(f"it sent a malformed frame: {error}") from None
        if reply is None:
            raise self.lost(ended(await self._returncode()))
        return reply

    async def _send(self, chunks: Sequence[frames.Buffer]) -> None:
        # In slices, each drained: the pipe transport copies what it cannot write at once, and
        # a whole image written in one call would be copied whole (writelines joins, too).
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            for at in range(0, view.nbytes, WRITE_SLICE):
                self.requests.write(view[at:at + WRITE_SLICE])
                await self.requests.drain()

    def lost(self, reason: str, function: str = "") -> WorkerLost:
        return WorkerLost(self.pid, function or "its task", reason)

    async def _returncode(self) -> int | None:
        try:
            return await asyncio.wait_for(self.process.wait(), 1.0)
        except TimeoutError:
            return None

    def signal(self, sig: int) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it died since returncode was read
                self.process.send_signal(sig)

    def close(self) -> None:
        """Close the pipes now (what a synchronous shutdown can do; ``stop`` also reaps).

        The transport is reached through the Process because only its close() releases the
        read pipe too; left open, its finalizer would run after the loop has closed."""
        transport = getattr(self.process, "_transport", None)
        if transport is not None:
            transport.close()
        else:
            self.requests.close()

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is reaped."""
        self.requests.close()
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()
        self.close()
