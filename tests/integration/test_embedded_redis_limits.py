"""The embedded Redis of `millstream up` refuses oversized strings at the producer's command."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from processors.local.up import MAX_BULK_BYTES
from streams.redis.server import EmbeddedRedis
from tests.conftest import require_tool


def test_an_rpush_over_the_bulk_limit_is_refused_and_one_under_it_accepted(tmp_path: Path):
    require_tool("redis-server")
    server = EmbeddedRedis(tmp_path, max_bulk_bytes=MAX_BULK_BYTES)
    try:
        client = redis.Redis(port=server.port)
        assert client.config_get("proto-max-bulk-len") == {"proto-max-bulk-len": str(MAX_BULK_BYTES)}
        assert client.rpush("img:translate:tasks", b"x" * (MAX_BULK_BYTES - 1024)) == 1
        with pytest.raises(redis.ResponseError, match="invalid bulk length"):
            client.rpush("img:translate:tasks", b"x" * (MAX_BULK_BYTES + 1))
        assert redis.Redis(port=server.port).llen("img:translate:tasks") == 1
    finally:
        server.stop()
