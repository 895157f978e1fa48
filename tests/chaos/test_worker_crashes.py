"""Worker processes killed, stopped and terminated mid-run: nothing lost, nothing doubled."""

from __future__ import annotations

import signal
import time
from collections import Counter

import orjson
import redis as sync_redis

from streams.redis.keys import Keys
from tests.chaos.conftest import outputs
from tests.support.workers import wait_until


def exactly_once(client: sync_redis.Redis, keys: Keys, count: int) -> list[dict[str, object]]:
    out = outputs(client, keys)
    seen = Counter(o["n"] for o in out)
    assert sorted(seen) == list(range(count)), f"missing: {set(range(count)) - set(seen)}"
    assert max(seen.values()) == 1, f"duplicated: {[n for n, c in seen.items() if c > 1][:10]}"
    return out


def pending_of(client: sync_redis.Redis, keys: Keys, consumer: str) -> int:
    try:
        info = client.xpending(keys.stream("in"), "copy")
    except sync_redis.ResponseError:  # the group does not exist yet
        return 0
    return int(dict((c["name"].decode(), c["pending"]) for c in info["consumers"]).get(consumer, 0))


def test_kill_9_of_one_of_two_workers_loses_and_doubles_nothing(start_worker, client, publish, keys):
    count = 10_000
    publish(count)
    a = start_worker("a", MSTEST_DELAY="0.001", MSTEST_CONCURRENCY="16")
    b = start_worker("b", MSTEST_DELAY="0.001", MSTEST_CONCURRENCY="16")
    # kill a in the middle of its work: it has produced outputs and holds pending entries
    wait_until(lambda: _processed(a) >= 200 and pending_of(client, keys, "a") > 0, timeout=60, every=0.01)
    a.kill()
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=120)
    out = exactly_once(client, keys, count)
    assert {o["by"] for o in out} == {"a", "b"}
    assert b.metric("millstream_stage_claimed_total") > 0, "b should have claimed a's entries"


def test_sigstopped_worker_is_claimed_from_and_its_late_outcomes_are_fenced(
    start_worker, client, publish, keys
):
    count = 200
    publish(count)
    a = start_worker("a", MSTEST_DELAY="0.5", MSTEST_CONCURRENCY="50", MSTEST_MAX_IN_FLIGHT="100")
    wait_until(lambda: pending_of(client, keys, "a") >= 100, timeout=30)
    a.signal(signal.SIGSTOP)
    b = start_worker("b", MSTEST_CONCURRENCY="16")
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=60)
    a.signal(signal.SIGCONT)
    wait_until(lambda: a.metric("millstream_stage_fenced_total") >= 50, timeout=30)
    time.sleep(0.5)  # let any (wrong) late write of a land before counting
    out = exactly_once(client, keys, count)
    assert {o["by"] for o in out} == {"b"}, "a's late outcomes must all be fenced off"
    assert b.metric("millstream_stage_claimed_total") >= 100


def test_dead_consumers_entries_move_within_heartbeat_ttl_despite_long_deadline(
    start_worker, client, publish, keys
):
    count = 20
    publish(count)
    a = start_worker("a", MSTEST_SLOW_CONSUMER="a", MSTEST_SLOW_DELAY="300", MSTEST_DEADLINE="600")
    wait_until(lambda: pending_of(client, keys, "a") == count, timeout=30)
    start_worker("b", MSTEST_DEADLINE="600")
    time.sleep(1.0)  # b is up and idle: a's entries stay a's while a lives
    assert client.xlen(keys.stream("out")) == 0
    a.kill()
    took = wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=30)
    assert took <= 1.0 + 2.0, f"took {took:.2f}s; heartbeat TTL is 1s"
    exactly_once(client, keys, count)


def test_sigterm_under_load_exits_within_grace_and_hands_back_at_once(
    start_worker, client, publish, keys
):
    count = 400
    publish(count)
    slow = dict(MSTEST_DELAY="0.05", MSTEST_CONCURRENCY="2", MSTEST_MAX_IN_FLIGHT="100")
    a = start_worker("a", **slow)
    wait_until(lambda: pending_of(client, keys, "a") >= 100, timeout=30)
    b = start_worker("b", MSTEST_CONCURRENCY="16", MSTEST_MAX_IN_FLIGHT="20", MSTEST_DELAY="0.05")
    wait_until(lambda: client.xlen(keys.stream("out")) >= 10, timeout=30)
    started = time.monotonic()
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0, "grace period is 5s"
    transitions = [t for _, e in client.xrange(keys.events) for t in orjson.loads(e[b"t"])]
    handed_back = [rid for rid, state, _ in transitions if state == "handed_back"]
    assert handed_back, "a held unstarted entries and must hand them back"
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=60)
    out = exactly_once(client, keys, count)
    rids = set(handed_back)
    assert all(o["by"] == "b" for o in out if f"r{o['n']}" in rids)
    assert b.metric("millstream_stage_claimed_total") == 0, "handed back, not claimed after a timeout"


def test_an_idle_worker_is_a_live_consumer_and_stops_promptly(start_worker, client, keys):
    worker = start_worker("idle")
    wait_until(lambda: pending_of(client, keys, "idle") == 0 and _consumers(client, keys) == ["idle"], timeout=30)
    time.sleep(1.0)  # several stats samples ran: stopping must not hang on them
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert time.monotonic() - started < 3


def _consumers(client: sync_redis.Redis, keys: Keys) -> list[str]:
    try:
        return [c["name"].decode() for c in client.xinfo_consumers(keys.stream("in"), "copy")]
    except sync_redis.ResponseError:
        return []


def _processed(worker) -> float:
    try:
        return worker.metric("millstream_stage_processed_total")
    except OSError:  # not serving metrics yet
        return 0.0
