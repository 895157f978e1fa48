"""Pausing, in process: the inbox's gate, and a runner's report of it (log, gauge), on the memory broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from streams.engine.inbox import Inbox
from streams.engine.runner import StageRunner
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.settings import Settings
from streams.stage import Stage
from streams.testing import ManualClock, MemoryBroker, MemoryPublisher, MemoryTransport


async def test_a_paused_inbox_gives_no_room_until_resumed() -> None:
    inbox = Inbox(2)
    await inbox.set_paused(True)
    waiting = asyncio.create_task(inbox.room())
    await asyncio.sleep(0)
    assert not waiting.done()

    await inbox.set_paused(False)

    assert await asyncio.wait_for(waiting, 1) == 2


async def test_closing_a_paused_inbox_wakes_the_reader_waiting_for_room() -> None:
    inbox = Inbox(2)
    await inbox.set_paused(True)
    waiting = asyncio.create_task(inbox.room())
    await asyncio.sleep(0)

    await inbox.close()

    await asyncio.wait_for(waiting, 1)


def test_the_broker_records_a_pause_once_with_one_event_per_change() -> None:
    broker = MemoryBroker(ManualClock())
    assert broker.pause("s", "jo") is True
    assert broker.pause("s", "kim") is False
    assert broker.paused == {"s": {"by": "jo", "at": broker.now_ms()}}
    assert broker.resume("s", "kim") is True
    assert broker.resume("s", "kim") is False
    assert [(e["control"], e["by"]) for e in broker.events] == [("paused", "jo"), ("resumed", "kim")]
    assert all("t" not in e for e in broker.events)


async def _copy(message: Message) -> Sequence[Outgoing]:
    return [Outgoing(message.payload)]


class Rig:
    def __init__(self) -> None:
        self.broker = MemoryBroker(ManualClock())
        settings = Settings(consumer="c-1", metrics_port=0, heartbeat_ttl=1.0, claim_interval=0.01,
                            trim_interval=60.0)
        self.transport = MemoryTransport(self.broker, "p", settings)
        self.registry = CollectorRegistry()
        self.runner = StageRunner(self.transport, Stage("copy", "tasks", _copy, sinks=["out"]), settings,
                                  Metrics(self.registry))
        self.publisher = MemoryPublisher(self.broker, settings)

    def gauge(self) -> float | None:
        return self.registry.get_sample_value("millstream_stage_paused", {"pipeline": "p", "stage": "copy"})

    async def until(self, check: object, within: float = 2.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # type: ignore[operator]
                await self.broker.wait_change(0.01)


async def test_a_runner_logs_one_line_and_sets_its_gauge_when_it_pauses_and_when_it_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    caplog.set_level(logging.INFO, "millstream.runner")
    task = asyncio.create_task(rig.runner.run())
    await rig.runner.started.wait()
    assert rig.gauge() == 0

    rig.broker.pause("copy", "jo")
    await rig.until(lambda: rig.runner.paused)
    await rig.publisher.publish_many("tasks", [({"n": 1}, "r1")])
    assert rig.gauge() == 1
    rig.broker.resume("copy", "jo")
    await rig.until(lambda: "out" in rig.broker.streams and rig.broker.streams["out"].ids)

    assert rig.gauge() == 0
    lines = [r.getMessage() for r in caplog.records if "paus" in r.getMessage() or "resum" in r.getMessage()]
    assert lines == ["stage copy: paused by an operator; finishing the 0 entries held, reading and claiming "
                     "nothing new", "stage copy: resumed; reading again"]
    rig.runner.stop()
    rig.transport.wake()
    await asyncio.wait_for(task, 2)


async def test_a_paused_runner_stops_at_once_when_asked() -> None:
    rig = Rig()
    rig.broker.pause("copy")
    task = asyncio.create_task(rig.runner.run())
    await rig.until(lambda: rig.runner.paused)

    rig.runner.stop()

    await asyncio.wait_for(task, 2)
    assert ("copy", "c-1") not in rig.broker.heartbeats, "it left as a stopping runner leaves"
