"""The worker process of a KillablePool: ``python -m streams.killable.child PARENT_PID``.

A fresh interpreter (never a fork of a process that runs threads). It takes
frames (streams.killable.frames) on its stdin and answers on its stdout, one
call at a time:

* hello ``{"path", "initializer", "initargs"}`` -> ``{"ready": true, "pid"}``, or
  ``{"ready": false, "error"}`` and exit 1 when the initializer raised;
* call ``{"call": "module:qualname", "args"}`` -> ``{"result": spec}`` or ``{"error"}``.

The function's own prints go to stderr (fd 1 is moved there): only frames use
the reply pipe. It exits at the end of its input, and is killed with its
parent (PR_SET_PDEATHSIG), so a worker whose pool died is not left behind.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

import streams.killable.frames as frames
from streams.errors import PermanentError, RetryableError

MAX_TRACEBACK = 8192
PR_SET_PDEATHSIG = 1


def resolve(name: str) -> Callable[..., Any]:
    """The module-level callable ``module:qualname`` names."""
    module, _, qualname = name.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{name} is not callable")
    return found  # type: ignore[no-any-return]


def describe(error: BaseException) -> dict[str, str]:
    kind = ("permanent" if isinstance(error, PermanentError)
            else "retryable" if isinstance(error, RetryableError) else "error")
    text = "".join(traceback.format_exception(error))[-MAX_TRACEBACK:]
    return {"kind": kind, "type": type(error).__name__, "message": str(error), "traceback": text}


def exact_reader(stream: io.BufferedIOBase) -> Callable[[int], bytearray]:
    """Read exactly n bytes (fewer only at end of input) into a fresh, writable buffer:
    arrays built on it need no copy to be writable."""
    def read_exactly(n: int) -> bytearray:
        data = bytearray(n)
        view, got = memoryview(data), 0
        while got < n:
            chunk = stream.readinto(view[got:])
            if not chunk:
                return data[:got]
            got += chunk
        return data
    return read_exactly


def send(out: BinaryIO, chunks: list[frames.Buffer]) -> None:
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def answer(frame: frames.Frame, functions: dict[str, Callable[..., Any]]) -> list[frames.Buffer]:
    """The reply to one call frame (a result that cannot be sent is an error too)."""
    name = frame.header.get("call")
    if not isinstance(name, str):
        raise frames.FrameError(f"not a call: {sorted(frame.header)}")
    try:
        fn = functions.get(name) or functions.setdefault(name, resolve(name))
        result = fn(*frames.unpack(frame.header.get("args"), frame.buffers))
        [spec], buffers = frames.pack([result])
        return frames.encode({"result": spec}, buffers)
    except Exception as error:  # noqa: BLE001 - the caller's failure goes back to it as data
        return frames.encode({"error": describe(error)})


def greet(hello: frames.Frame, out: BinaryIO) -> bool:
    """Run the initializer the hello frame names; tell the pool whether this worker is ready."""
    for entry in reversed(hello.header.get("path") or []):
        if isinstance(entry, str) and entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        if initializer := hello.header.get("initializer"):
            resolve(initializer)(*frames.unpack(hello.header.get("initargs", []), hello.buffers))
    except Exception as error:  # noqa: BLE001 - reported to the pool, which fails the start
        send(out, frames.encode({"ready": False, "error": describe(error)}))
        return False
    send(out, frames.encode({"ready": True, "pid": os.getpid()}))
    return True


def die_with(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the end of input still ends an idle worker
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        die_with(int(argv[1]))
    requests, replies = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the function cannot eat the requests
    os.dup2(2, 1)  # nor write into the replies
    read = exact_reader(requests)
    hello = frames.read_sync(read)
    if hello is None or not greet(hello, replies):
        return 0 if hello is None else 1
    functions: dict[str, Callable[..., Any]] = {}
    while (frame := frames.read_sync(read)) is not None:
        send(replies, answer(frame, functions))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
