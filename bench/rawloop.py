"""The baseline of ``millstream bench core``: one stage as a hand-written redis-py loop.

XREADGROUP COUNT 500, then the outputs (XADD) and the XACK pipelined in one
round trip: no fencing, no status, no events. Run as
``python -m bench.rawloop URL SOURCE SINK GROUP``; stops on SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import sys

import redis


def main(url: str, source: str, sink: str, group: str) -> None:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ResponseError):  # the group exists already
        client.xgroup_create(source, group, id="0", mkstream=True)
    while not stopping:
        reply = client.xreadgroup(group, "raw", {source: ">"}, count=500, block=100)
        if not reply:
            continue
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(sink, fields)
        pipe.xack(source, group, *[entry_id for entry_id, _ in entries])
        pipe.execute()


if __name__ == "__main__":
    main(*sys.argv[1:5])
