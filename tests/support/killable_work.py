"""Module-level functions for KillablePool tests: a worker process imports them by name."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from streams.errors import InvalidPayload
from streams.killable import frames

_held: list[bytearray] = []  # what stuck() allocated: kept referenced, so resident


def add(a: int, b: int) -> int:
    return a + b


def double(array: Any) -> Any:
    return array * 2


def echo(*values: Any) -> list[Any]:
    return list(values)


def same(value: Any) -> Any:
    return value


def pid() -> int:
    return os.getpid()


def spin() -> None:
    while True:
        pass


def sleep_an_hour() -> None:
    time.sleep(3600)


def stuck(how: str, marker: str = "", megabytes: int = 0) -> None:
    """Hold ``megabytes`` (every page touched: resident), write ``marker``, then block for good
    without yielding: ``spin`` (a busy loop) or ``sleep`` (``time.sleep(3600)``)."""
    block = bytearray(megabytes * 1024 * 1024)
    block[::4096] = b"\x01" * len(block[::4096])
    _held.append(block)
    if marker:
        with open(marker, "w") as done:
            done.write(str(os.getpid()))
    if how == "sleep":
        sleep_an_hour()
    spin()


def fail() -> None:
    raise ValueError("bad input")


def refuse() -> None:
    raise InvalidPayload("no such field")


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def write_garbage() -> None:
    """Answer with bytes that are not a frame, as a broken worker would."""
    os.write(_reply_fd(), b"not a frame at all")
    time.sleep(3600)


def write_bad_result() -> None:
    """A well-framed reply whose result names a buffer that is not there."""
    os.write(_reply_fd(), frames.encode_bytes({"result": {"bytes": 3}}))
    time.sleep(3600)


def _reply_fd() -> int:
    """The worker's reply pipe: the one descriptor open for writing on a pipe besides 1 and 2."""
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        fd = int(name)
        if fd > 2 and os.readlink(f"/proc/self/fd/{name}").startswith("pipe:") and _writable(fd):
            return fd
    raise RuntimeError("no reply pipe")


def _writable(fd: int) -> bool:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY


def init_marker(path: str) -> None:
    with open(path, "a") as marker:
        marker.write(f"{os.getpid()}\n")


def init_fails() -> None:
    raise RuntimeError("model file missing")
