"""Shared test helpers: servers are real, and a missing one fails in CI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Return the path of executable ``name``; skip locally but fail in CI when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the test session; tests keep apart by pipeline name."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), binary=require_tool("redis-server"))
    yield server
    server.stop()


@pytest.fixture
def pipeline_name(request: pytest.FixtureRequest) -> str:
    """A pipeline name (the key hash tag) no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return Settings(redis_url=redis_server.url, consumer="c-main", metrics_port=0,
                    heartbeat_ttl=1.0, claim_interval=0.2, trim_interval=0.5, stats_interval=0.5)


@pytest.fixture
def keys(pipeline_name: str) -> Keys:
    return Keys("mst", pipeline_name)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = connect(settings)
    await library.load(client)
    yield client
    await client.aclose()


def require_font(path: str) -> None:
    """Skip locally but fail in CI when a font the set-up installs is missing."""
    if not os.path.exists(path):
        message = f"{path} is missing (scripts/setup.sh installs fonts-noto-cjk)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def start_worker(redis_server: RedisServer, pipeline_name: str, tmp_path: Path
                 ) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``python -m streams worker`` processes of the test pipeline; each is stopped after the test."""
    started: list[WorkerProcess] = []

    def start(consumer: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(redis_server.url, pipeline_name, consumer, tmp_path, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.ensure_stopped()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[sync_redis.Redis]:
    """A synchronous client of the session's redis-server."""
    c = sync_redis.Redis.from_url(redis_server.url)
    yield c
    c.close()
