"""What every route of one app shares: the pipeline, its keys, one Redis client, the publisher."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from streams.api.settings import ApiSettings
from streams.api.views import Ends
from streams.pipeline import Pipeline
from streams.redis.keys import ERRORS, Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings


@dataclass
class Context:
    pipeline: Pipeline
    settings: Settings
    api: ApiSettings
    redis: Redis
    keys: Keys = field(init=False)
    publisher: Publisher = field(init=False)
    ends: Ends = field(init=False)

    def __post_init__(self) -> None:
        self.ends = Ends.of(self.pipeline)
        self.keys = Keys(self.settings.namespace, self.pipeline.name, lists=self.pipeline.list_keys)
        self.publisher = Publisher.from_settings(self.redis, self.keys, self.settings,
                                                 self.pipeline.prioritized)

    @property
    def ingest_streams(self) -> tuple[str, ...]:
        """Where a producer may publish: streams stages read, except the errors and result streams."""
        ends = {ERRORS, *self.pipeline.results}
        return tuple(s for s in self.pipeline.streams if s not in ends)

    @property
    def status_ttl(self) -> float:
        return self.settings.status_ttl
