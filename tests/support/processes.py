"""Waiting on and looking at worker processes by pid (Linux /proc), for the KillablePool tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.pipelines import wait_for


def alive(pid: int) -> bool:
    """Whether ``pid`` still exists (a zombie counts: it is not reaped)."""
    return Path(f"/proc/{pid}").exists()


async def marked(path: Path) -> int:
    """Wait until a stuck() call wrote its marker; the pid of its process."""
    return int(await wait_for(lambda: _read(path), timeout=30))


async def _read(path: Path) -> str:
    return await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")


async def gone_soon(pid: int) -> bool:
    """``gone`` as a ``wait_for`` check."""
    return gone(pid)


def gone(pid: int) -> bool:
    """Not alive, or a zombie waiting for init to reap it (its memory is back)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1].startswith("Z")
    except FileNotFoundError:
        return True
