"""The producer spool on the in-memory broker (streams.testing) and a real SQLite file in tmp_path.

The broker's injected outages stand for an unreachable Redis: before the call
(refused) or after it was applied (the reply lost). Its publisher dedups by
request id as ms_publish does, so "none twice" is checked against the same rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.errors import ConfigError, PayloadTooLarge
from streams.settings import Settings, section
from streams.spool import SpoolError, SpoolFull, SpoolingPublisher, SpoolMetrics, SpoolSettings, SpoolStore
from streams.testing import MemoryBroker, MemoryPublisher

DOWN = 10_000  # outage calls: more than any test makes


class Crash(BaseException):
    """The process dying: nothing after it runs, nothing is committed."""


class CrashBeforeDelete(SpoolStore):
    def remove(self, rows):  # type: ignore[no-untyped-def]
        raise Crash("killed between the drain's publish and the delete")


def spool_settings(tmp_path: Path, **overrides: object) -> SpoolSettings:
    values: dict[str, object] = {"spool_path": str(tmp_path / "spool.db"), "spool_retry_max": 0.05, **overrides}
    return SpoolSettings(**values)  # type: ignore[arg-type]


def open_store(settings: SpoolSettings, kind: type[SpoolStore] = SpoolStore) -> SpoolStore:
    return kind(Path(settings.spool_path), max_rows=settings.spool_max_rows,
                max_bytes=settings.spool_max_bytes, synchronous=settings.spool_synchronous)


def request_ids(broker: MemoryBroker, stream: str = "in") -> list[str]:
    found = broker.streams.get(stream)
    if found is None:
        return []
    return [dict(zip(f[::2], f[1::2], strict=True))[b"rid"].decode() for f in found.entries.values()]


def payloads(broker: MemoryBroker, stream: str = "in") -> list[dict[str, object]]:
    entries = broker.streams[stream].entries.values()
    return [orjson.loads(dict(zip(f[::2], f[1::2], strict=True))[b"d"]) for f in entries]


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def spooling(tmp_path: Path, broker: MemoryBroker, registry: CollectorRegistry
                   ) -> AsyncIterator[SpoolingPublisher]:
    producer = SpoolingPublisher.open(MemoryPublisher(broker), spool_settings(tmp_path),
                                      SpoolMetrics(registry), "p")
    yield producer
    await producer.aclose()


def sample(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(f"millstream_spool_{name}", {"pipeline": "p"})


async def drain(producer: SpoolingPublisher) -> None:
    runner = asyncio.create_task(producer.run())
    try:
        async with asyncio.timeout(10):
            await producer.drained()
    finally:
        runner.cancel()


async def test_a_reachable_redis_gets_the_task_directly_with_its_entry_id(spooling, broker):
    accepted = await spooling.publish("in", {"n": 1}, "r1")
    assert accepted.entry is not None and not accepted.spooled
    assert accepted.request_id == "r1" and request_ids(broker) == ["r1"]
    assert spooling.depth == 0


async def test_tasks_accepted_during_an_outage_are_spooled_and_drain_in_order_once_it_ends(
        spooling, broker, registry):
    broker.fail_next(DOWN, only="publish")
    accepted = [await spooling.publish("in", {"n": n}, None if n % 2 else f"r{n}") for n in range(20)]
    assert all(a.spooled for a in accepted) and spooling.depth == 20
    assert broker.outages_left == DOWN - 1, "once something is spooled, later publishes queue behind it"
    assert request_ids(broker) == []
    assert sample(registry, "spooled_total") == 20 and sample(registry, "depth") == 20
    assert (sample(registry, "bytes") or 0) > 0
    broker.fail_next(0)
    await drain(spooling)
    assert [p["n"] for p in payloads(broker)] == list(range(20))
    assert request_ids(broker) == [a.request_id for a in accepted], "generated request ids are kept"
    assert sample(registry, "drained_total") == 20 and sample(registry, "depth") == 0
    assert sample(registry, "bytes") == 0


async def test_a_publish_that_reached_redis_before_its_reply_was_lost_is_not_doubled(spooling, broker):
    broker.fail_next(1, applied=True, only="publish")
    accepted = await spooling.publish("in", {"n": 1})
    assert accepted.spooled and request_ids(broker) == [accepted.request_id], "it was applied once"
    await drain(spooling)
    assert request_ids(broker) == [accepted.request_id]


async def test_the_drainer_keeps_trying_while_the_outage_lasts(spooling, broker, registry):
    broker.fail_next(DOWN, only="publish")
    await spooling.publish_many("in", [({"n": n}, f"r{n}") for n in range(3)])
    broker.fail_next(4, only="publish")
    await drain(spooling)
    assert request_ids(broker) == ["r0", "r1", "r2"]
    assert sample(registry, "drain_failures_total") == 4


async def test_a_batch_is_drained_per_stream_in_the_order_it_was_accepted(spooling, broker):
    broker.fail_next(DOWN, only="publish")
    for n, stream in enumerate(["a", "a", "b", "a", "b"]):
        await spooling.publish(stream, {"n": n}, f"r{n}")
    broker.fail_next(0)
    await drain(spooling)
    assert request_ids(broker, "a") == ["r0", "r1", "r3"] and request_ids(broker, "b") == ["r2", "r4"]


async def test_a_full_spool_refuses_the_whole_batch_with_SpoolFull(tmp_path, broker, registry):
    settings = spool_settings(tmp_path, spool_max_rows=3)
    async with SpoolingPublisher.open(MemoryPublisher(broker), settings, SpoolMetrics(registry), "p") as producer:
        broker.fail_next(DOWN, only="publish")
        await producer.publish_many("in", [({"n": 0}, "r0"), ({"n": 1}, "r1")])
        with pytest.raises(SpoolFull) as refused:
            await producer.publish_many("in", [({"n": 2}, "r2"), ({"n": 3}, "r3")])
        assert refused.value.rows == 2 and refused.value.max_rows == 3
        assert "MILLSTREAM_SPOOL_MAX_ROWS" in str(refused.value)
        assert producer.depth == 2 and sample(registry, "refused_total") == 2
        broker.fail_next(0)
        await drain(producer)
        assert request_ids(broker) == ["r0", "r1"]


async def test_the_byte_limit_refuses_a_task_that_would_pass_it(tmp_path, broker):
    settings = spool_settings(tmp_path, spool_max_bytes=100)
    async with SpoolingPublisher.open(MemoryPublisher(broker), settings) as producer:
        broker.fail_next(DOWN, only="publish")
        await producer.publish("in", {"x": "a" * 40}, "r0")
        with pytest.raises(SpoolFull) as refused:
            await producer.publish("in", {"x": "b" * 40}, "r1")
        assert refused.value.max_bytes == 100 and refused.value.size + refused.value.adding > 100
        assert producer.depth == 1


async def test_a_payload_over_the_publish_limit_is_refused_not_spooled(tmp_path, broker):
    publisher = MemoryPublisher(broker, Settings(consumer="m", max_payload_bytes=64))
    async with SpoolingPublisher.open(publisher, spool_settings(tmp_path)) as producer:
        broker.fail_next(DOWN, only="publish")
        await producer.publish("in", {"n": 0}, "r0")
        with pytest.raises(PayloadTooLarge):
            await producer.publish("in", {"x": "a" * 100}, "r1")
        with pytest.raises(ConfigError):
            await producer.publish("bad stream!", {"n": 1}, "r2")
        assert producer.depth == 1


async def test_a_crash_between_the_drains_publish_and_its_delete_publishes_each_task_once(tmp_path, broker):
    settings = spool_settings(tmp_path)
    crashing = SpoolingPublisher(MemoryPublisher(broker), open_store(settings, CrashBeforeDelete), settings)
    broker.fail_next(DOWN, only="publish")
    await crashing.publish_many("in", [({"n": n}, f"r{n}") for n in range(5)])
    broker.fail_next(0)
    with pytest.raises(Crash):
        await crashing.drain_once()
    assert request_ids(broker) == [f"r{n}" for n in range(5)], "published, then the process died"
    await crashing.aclose()
    async with SpoolingPublisher.open(MemoryPublisher(broker), settings) as restarted:
        assert restarted.depth == 5, "the rows outlived the crash: at least once"
        await drain(restarted)
        assert restarted.depth == 0
    assert request_ids(broker) == [f"r{n}" for n in range(5)], "the dedup made it exactly once"


async def test_what_is_spooled_survives_a_restart_of_the_producer(tmp_path, broker):
    settings = spool_settings(tmp_path)
    async with SpoolingPublisher.open(MemoryPublisher(broker), settings) as first:
        broker.fail_next(DOWN, only="publish")
        await first.publish("in", {"n": 0}, "r0")
    broker.fail_next(0)
    async with SpoolingPublisher.open(MemoryPublisher(broker), settings) as second:
        accepted = await second.publish("in", {"n": 1}, "r1")
        assert accepted.spooled, "a new task waits behind the one spooled before the restart"
        await drain(second)
    assert request_ids(broker) == ["r0", "r1"]


def test_a_spool_file_is_held_by_one_process_at_a_time(tmp_path):
    settings = spool_settings(tmp_path)
    store = open_store(settings)
    try:
        with pytest.raises(SpoolError, match="another process holds it"):
            open_store(settings)
    finally:
        store.close()
    open_store(settings).close()


def test_a_file_that_is_not_a_spool_is_refused_with_its_path(tmp_path):
    (tmp_path / "spool.db").write_bytes(b"not a database, " * 100)
    with pytest.raises(SpoolError, match=r"spool\.db"):
        open_store(spool_settings(tmp_path))


def test_the_spool_uses_wal_and_the_chosen_fsync_policy(tmp_path):
    store = open_store(spool_settings(tmp_path, spool_synchronous="NORMAL"))
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL (FULL is 2)
    finally:
        store.close()


def test_spool_settings_come_from_MILLSTREAM_SPOOL_variables_and_are_checked():
    env = {"MILLSTREAM_SPOOL_PATH": "/var/lib/p/spool.db", "MILLSTREAM_SPOOL_MAX_ROWS": "10",
           "MILLSTREAM_SPOOL_SYNCHRONOUS": "normal"}
    loaded = section(SpoolSettings, env)
    assert (loaded.spool_path, loaded.spool_max_rows, loaded.spool_synchronous) == (
        "/var/lib/p/spool.db", 10, "normal")
    assert loaded.enabled and not SpoolSettings().enabled
    assert SpoolSettings().spool_synchronous == "full"
    with pytest.raises(ConfigError, match="MILLSTREAM_SPOOL_MAX_BYTES"):
        SpoolSettings(spool_max_bytes=0)
    with pytest.raises(ConfigError, match="MILLSTREAM_SPOOL_SYNCHRONOUS"):
        SpoolSettings(spool_synchronous="off")
