"""Ack-aware trimming never removes an entry that some group has not acknowledged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.redis.library import SOURCE
from tests.support.redis_server import RedisServer

GROUPS = ("g1", "g2", "g3")
op = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 5)),
    st.tuples(st.just("read"), st.sampled_from(GROUPS), st.sampled_from(("c1", "c2")), st.integers(1, 4)),
    st.tuples(st.just("ack"), st.sampled_from(GROUPS), st.integers(0, 10)),
    st.tuples(st.just("trim")),
)


@pytest.fixture(scope="module")
def client(redis_server: RedisServer) -> Iterator[sync_redis.Redis]:
    c = sync_redis.Redis.from_url(redis_server.url)
    c.function_load(SOURCE, replace=True)
    yield c
    c.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_trim_keeps_every_entry_a_group_still_needs(client: sync_redis.Redis, ops: list[tuple]) -> None:
    key = f"mst:{{trim{uuid.uuid4().hex[:8]}}}:stream:s"
    client.xadd(key, {"n": "seed"})
    for g in GROUPS:
        client.xgroup_create(key, g, id="0")
    acked: dict[str, set[bytes]] = {g: set() for g in GROUPS}
    added: list[bytes] = [client.xrange(key)[0][0]]
    try:
        for o in ops:
            if o[0] == "add":
                added += [client.xadd(key, {"n": str(i)}) for i in range(o[1])]
            elif o[0] == "read":
                client.xreadgroup(o[1], o[2], {key: ">"}, count=o[3])
            elif o[0] == "ack":
                pending = [p["message_id"] for p in client.xpending_range(key, o[1], "-", "+", 100)]
                chosen = pending[: o[2]]
                if chosen:
                    client.xack(key, o[1], *chosen)
                    acked[o[1]].update(chosen)
            else:
                client.fcall("ms_trim", 1, key)
            present = {i for i, _ in client.xrange(key)}
            for g in GROUPS:
                needed = [i for i in added if i not in acked[g]]
                assert set(needed) <= present, f"group {g} lost {sorted(set(needed) - present)}"
    finally:
        client.delete(key)


def test_trim_removes_entries_every_group_acknowledged(client: sync_redis.Redis) -> None:
    key = f"mst:{{trim{uuid.uuid4().hex[:8]}}}:stream:s"
    ids = [client.xadd(key, {"n": str(i)}) for i in range(10)]
    client.xgroup_create(key, "a", id="0")
    client.xgroup_create(key, "b", id="0")
    client.xreadgroup("a", "c", {key: ">"}, count=10)
    client.xack(key, "a", *ids)
    client.xreadgroup("b", "c", {key: ">"}, count=6)
    client.xack(key, "b", *ids[:3], ids[4])
    assert client.fcall("ms_trim", 1, key) == 3
    assert [i for i, _ in client.xrange(key)] == ids[3:]
    client.delete(key)


def test_stream_without_groups_is_not_trimmed(client: sync_redis.Redis) -> None:
    key = f"mst:{{trim{uuid.uuid4().hex[:8]}}}:stream:s"
    client.xadd(key, {"n": "1"})
    assert client.fcall("ms_trim", 1, key) == 0 and client.xlen(key) == 1
    client.delete(key)
