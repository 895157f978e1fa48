"""``millstream cancel`` as an operator runs it (``python -m streams cancel``) against worker processes.

The copier stage ("copy": in → out) runs in ``python -m streams worker`` processes on a
real redis-server, with a claim interval of 0.2 s. A cancel is data in Redis: one
issued while no worker runs is honoured when one starts; one issued while a
handler runs cancels that handler (MSTEST_DELAY makes every handler wait 60 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis as sync_redis
import typer
from typer.testing import CliRunner, Result

from streams.cli import ops
from streams.redis.keys import Keys
from tests.support.redis_server import RedisServer
from tests.support.workers import ROOT, WorkerProcess, wait_until

Start = Callable[..., WorkerProcess]


def millstream(redis_server: RedisServer, keys: Keys, *args: str) -> Any:
    """Run ``millstream <args> --pipeline P --json`` in a process of its own; its JSON answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env.update(PYTHONPATH=str(ROOT), MILLSTREAM_REDIS_URL=redis_server.url, MILLSTREAM_NAMESPACE=keys.namespace,
               MILLSTREAM_OPERATOR="oncall-jo")
    done = subprocess.run([sys.executable, "-m", "streams", *args, "--pipeline", keys.pipeline, "--json"],
                          cwd=ROOT, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return orjson.loads(done.stdout)


def publish(client: sync_redis.Redis, keys: Keys, count: int) -> None:
    """Tasks {"n": i} with request ids r<i>, as envelopes the publisher writes (v, d, rid, att, t0)."""
    for i in range(count):
        client.xadd(keys.stream("in"), {"v": "1", "d": orjson.dumps({"n": i}), "rid": f"r{i}", "att": "1",
                                        "t0": str(int(time.time() * 1000))})


def outputs(client: sync_redis.Redis, keys: Keys) -> list[int]:
    return sorted(orjson.loads(f[b"d"])["n"] for _, f in client.xrange(keys.stream("out")))


def errors(client: sync_redis.Redis, keys: Keys) -> list[tuple[str, str]]:
    records = [orjson.loads(f[b"d"]) for _, f in client.xrange(keys.errors)]
    return sorted((r["request_id"], r["error_message"]) for r in records)


def pending(client: sync_redis.Redis, keys: Keys) -> int:
    """Entries the group "copy" holds (0 before a worker created it)."""
    try:
        return int(client.xpending(keys.stream("in"), "copy")["pending"])
    except sync_redis.ResponseError:
        return 0


def ended_ms(client: sync_redis.Redis, keys: Keys, rid: str, what: str) -> int:
    """When (the events entry's ms) the cancel of ``rid`` was written ("control"), or its transition
    to state ``what`` was committed: the clock of Redis, whatever the CLI's start-up took."""
    for entry_id, fields in client.xrange(keys.events):
        if what == "control" and fields.get(b"request_id") == rid.encode():
            return int(entry_id.split(b"-")[0])
        if what != "control" and [rid, what] in [t[:2] for t in orjson.loads(fields.get(b"t", b"[]"))]:
            return int(entry_id.split(b"-")[0])
    raise AssertionError(f"no event of {rid} ({what})")


def test_a_cancel_issued_while_every_worker_is_down_is_honoured_when_they_start(
    start_worker: Start, client: sync_redis.Redis, redis_server: RedisServer, keys: Keys
):
    publish(client, keys, 10)
    answer = millstream(redis_server, keys, "cancel", "r3", "r7", "--reason", "duplicate order")

    assert [(a["request_id"], a["cancelled"], a["by"], a["changed"], a["state"]) for a in answer["cancelled"]] == [
        ("r3", True, "oncall-jo", True, None), ("r7", True, "oncall-jo", True, None)]
    workers = [start_worker("a", MSTEST_CONCURRENCY="4"), start_worker("b", MSTEST_CONCURRENCY="4")]
    wait_until(lambda: len(outputs(client, keys)) == 8 and len(errors(client, keys)) == 2, timeout=60)

    assert outputs(client, keys) == [0, 1, 2, 4, 5, 6, 8, 9]
    assert errors(client, keys) == [("r3", "cancelled by oncall-jo: duplicate order"),
                                    ("r7", "cancelled by oncall-jo: duplicate order")]
    wait_until(lambda: pending(client, keys) == 0, timeout=10)
    events = [(e[b"control"], e[b"request_id"]) for _, e in client.xrange(keys.events) if b"control" in e]
    assert events == [(b"cancelled", b"r3"), (b"cancelled", b"r7")]
    again = millstream(redis_server, keys, "cancel", "r3")
    assert [(a["changed"], a["state"]) for a in again["cancelled"]] == [(False, "cancelled")]
    assert all(w.process.poll() is None for w in workers)


def test_a_cancel_stops_a_running_handler_within_the_claim_interval_and_the_worker_goes_on(
    start_worker: Start, client: sync_redis.Redis, redis_server: RedisServer, keys: Keys
):
    worker = start_worker("a", MSTEST_CONCURRENCY="2", MSTEST_DELAY="60")
    publish(client, keys, 1)
    wait_until(lambda: pending(client, keys) == 1, timeout=30)

    millstream(redis_server, keys, "cancel", "r0", "--reason", "stuck")
    wait_until(lambda: errors(client, keys) != [], timeout=20)
    took = ended_ms(client, keys, "r0", "cancelled") - ended_ms(client, keys, "r0", "control")

    assert took < 2000, f"the running handler was cancelled {took} ms after the cancel was written"
    assert errors(client, keys) == [("r0", "cancelled by oncall-jo: stuck")]
    assert outputs(client, keys) == []
    wait_until(lambda: pending(client, keys) == 0, timeout=10)
    assert client.zcard(keys.delayed("in")) == 0, "a cancel is not a retry"
    assert worker.process.poll() is None
    assert "task r0 was cancelled by oncall-jo; cancelling its handler" in worker.log()


def test_the_cancel_command_says_what_a_cancel_of_an_ended_or_unknown_task_changes(
    redis_server: RedisServer, keys: Keys, client: sync_redis.Redis
):
    app = typer.Typer()
    ops.register(app)
    env = {"MILLSTREAM_REDIS_URL": redis_server.url, "MILLSTREAM_NAMESPACE": keys.namespace,
           "MILLSTREAM_OPERATOR": "oncall-jo"}
    client.hset(keys.status(0), "r-done", orjson.dumps({"stage": "copy", "state": "done", "entry": "1-0",
                                                        "at": int(time.time() * 1000)}))
    client.hset(keys.status_head, mapping={"n": 0, "at": int(time.time() * 1000)})

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["cancel", *args, "--pipeline", keys.pipeline], env=env)

    done, unknown = run("r-done"), run("r-new", "--reason", "dup")
    again, empty = run("r-new"), run("")

    assert done.exit_code == 0 and "task r-done cancelled by oncall-jo" in done.stdout
    assert "note: task r-done had already ended (done); the cancel changes nothing" in done.stdout
    assert unknown.exit_code == 0 and "note: no status record of task r-new" in unknown.stdout
    assert again.exit_code == 0 and "task r-new was already cancelled by oncall-jo" in again.stdout
    assert empty.exit_code == 2 and "a cancel needs a request id of 1 to 1024 characters" in empty.output
    assert orjson.loads(client.hget(keys.cancels, "r-new"))["reason"] == "dup"
