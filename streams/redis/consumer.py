"""The consumer side of one stage's group: reading, claiming and renewing entries.

Delivery counts come from Redis (XPENDING): 1 for a new entry, more when a
consumer died or stalled while holding it. Claims go through the library's
functions, so two consumers never claim the same entry and nobody claims an
entry back from a live consumer before its deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from streams.delivery import Delivery, to_deliveries, to_delivery
from streams.redis import resp
from streams.redis.keys import Keys
from streams.redis.library import fcall

REPLY_TIMEOUT = 30.0  # seconds beyond a read's block time: a reply lost in a Redis restart


@dataclass(frozen=True, slots=True)
class GroupConsumer:
    """Reads go through a Channel of their own (resp.py); everything else through the client."""

    redis: Redis
    keys: Keys
    stream: str
    group: str
    consumer: str
    reads: resp.Channel = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", resp.Channel(self.redis))

    @property
    def key(self) -> str:
        return self.keys.stream(self.stream)

    async def ensure_group(self) -> None:
        """Create the group at the stream's start (entries published before it count), and join it.

        Joining explicitly makes an idle consumer visible (XREADGROUP on an empty
        stream does not register it on Redis 7.0).
        """
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        await self.redis.xgroup_createconsumer(self.key, self.group, self.consumer)

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` never-delivered entries, waiting at most ``block_ms``.

        Sent and parsed here, not by redis-py, whose reply parsing builds a
        dict per entry that decoding does not need.
        """
        args = [b"XREADGROUP", b"GROUP", self.group.encode(), self.consumer.encode(), b"COUNT",
                b"%d" % count, b"BLOCK", b"%d" % block_ms, b"STREAMS", self.key.encode(), b">"]
        try:
            packed = resp.command(len(args), [*map(resp.bulk, args)])
            reply: Any = await self.reads.call(packed, block_ms / 1000 + REPLY_TIMEOUT)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()
            return []
        if not reply:
            return []
        # RESP3 replies a map {stream: entries}, RESP2 a list [[stream, entries]].
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return [to_delivery(self.stream, i, flat, 1) for i, flat in entries]

    async def own_pending(self, page: int) -> AsyncIterator[list[Delivery]]:
        """This consumer's own pending entries (left by an earlier run), oldest first."""
        start = "-"
        while True:
            claimed = await fcall(self.redis, "ms_claim_mine", [self.key, self.keys.fences],
                                  [self.group, self.consumer, start, page])
            if not claimed:
                return
            batch = to_deliveries(self.stream, claimed)
            yield batch
            start = claimed[-1][0].decode()

    async def claim_lost(self, held: Container[str], page: int = 500) -> list[Delivery]:
        """This consumer's pending entries that are not in ``held``, re-delivered.

        A read (or a claim) whose reply was lost in a dropped connection left
        its entries pending for this consumer in Redis, unknown to it; nobody
        else takes them before their deadline, since the consumer is alive.
        """
        lost: list[str] = []
        start = "-"
        while True:
            pending = await self.redis.xpending_range(self.key, self.group, start, "+", page, self.consumer)
            ids = [_text(m) for p in pending if isinstance(m := p["message_id"], bytes | str)]
            lost += [i for i in ids if i not in held]
            if len(ids) < page:
                break
            start = f"({ids[-1]}"
        found: list[Delivery] = []
        for i in range(0, len(lost), page):
            claimed = await fcall(self.redis, "ms_claim_lost", [self.key, self.keys.fences],
                                  [self.group, self.consumer, *lost[i:i + page]])
            found += to_deliveries(self.stream, claimed)
        return found

    async def claim_dead(self, dead: str, count: int) -> list[Delivery]:
        """Entries of ``dead`` if its heartbeat is gone (the consumer is deleted once empty)."""
        claimed = await fcall(
            self.redis, "ms_claim_dead",
            [self.key, self.keys.heartbeat(self.group, dead), self.keys.fences],
            [self.group, dead, self.consumer, count],
        )
        return to_deliveries(self.stream, claimed)

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Entries other consumers have held for longer than ``min_idle_ms``."""
        claimed = await fcall(self.redis, "ms_claim_stale", [self.key, self.keys.fences],
                              [self.group, self.consumer, min_idle_ms, count])
        return to_deliveries(self.stream, claimed)

    async def renew(self, ids: list[str]) -> list[str]:
        """Reset the idle time of those ``ids`` still ours; return them."""
        if not ids:
            return []
        renewed = await fcall(self.redis, "ms_renew", [self.key], [self.group, self.consumer, *ids])
        return [i.decode() for i in renewed]

    # -- owned streams (a keyed stage's router and partitions): one reader at a time, by lease --

    @property
    def lease_key(self) -> str:
        return self.keys.lease(self.stream, self.group)

    async def lease(self, mode: str, ttl_ms: int) -> bool:
        """``mode`` 'take', 'renew' or 'release' this stream's lease; whether it is (was) ours."""
        return bool(await fcall(self.redis, "ms_lease", [self.lease_key], [self.consumer, ttl_ms, mode]))

    async def claim_owned(self, start: str, count: int) -> list[Delivery] | None:
        """Up to ``count`` entries pending for anyone after ``start`` ('-': all), now ours;
        None unless we hold the lease."""
        claimed = await fcall(self.redis, "ms_claim_owned", [self.key, self.lease_key, self.keys.fences],
                              [self.group, self.consumer, start, count])
        return None if claimed is None else to_deliveries(self.stream, claimed)

    async def read_owned(self, count: int) -> list[Delivery] | None:
        """Up to ``count`` new entries, never blocking; None unless we lease the stream."""
        entries = await fcall(self.redis, "ms_read_owned", [self.key, self.lease_key],
                              [self.group, self.consumer, count])
        if entries is None:
            return None
        return [to_delivery(self.stream, i, flat, 1) for i, flat in entries]

    async def live_consumers(self) -> list[str]:
        """The group's consumers whose heartbeat lives, sorted."""
        names = sorted(await self.consumers())
        beats = await self.redis.mget([self.keys.heartbeat(self.group, c) for c in names]) if names else []
        return [name for name, beat in zip(names, beats, strict=True) if beat is not None]

    async def close(self) -> None:
        await self.reads.close()

    async def consumers(self) -> list[str]:
        infos = await self.redis.xinfo_consumers(self.key, self.group)
        return [_text(info["name"]) for info in infos]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
