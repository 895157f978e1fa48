"""Submitting tasks from files or URLs, and waiting for their outcomes."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from streams.codec import decode
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings


def task_for(source: str, inbox: Path, is_long: bool, callback_url: str | None = None) -> dict[str, Any]:
    """A task for a URL, or for a local file copied into ``inbox`` (a directory workers may read)."""
    request_id = uuid.uuid4().hex
    if source.startswith(("http://", "https://", "file://")):
        url, image_id = source, Path(source.split("?")[0]).stem or request_id
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{source} is not a file")
        inbox.mkdir(parents=True, exist_ok=True)
        copy = inbox / f"{request_id}{path.suffix.lower()}"
        shutil.copyfile(path, copy)
        url, image_id = copy.resolve().as_uri(), path.stem
    task = {"request_id": request_id, "image_url": url, "image_id": image_id, "is_long": is_long}
    return {**task, "callback_url": callback_url} if callback_url else task


async def submit(redis: Redis, keys: Keys, tasks: list[dict[str, Any]], settings: Settings) -> list[str]:
    """Publish ``tasks`` in one call; the configured size limit and dedup window apply."""
    items = [(t, str(t["request_id"])) for t in tasks]
    return await Publisher.from_settings(redis, keys, settings).publish_many("tasks", items)


async def outcomes(redis: Redis, keys: Keys, request_ids: set[str], seconds: float,
                   start: str = "0-0") -> dict[str, dict[str, Any]]:
    """Success records or error records of ``request_ids``, waiting up to ``seconds``."""
    found: dict[str, dict[str, Any]] = {}
    cursors = {keys.stream("success"): start, keys.errors: start}
    deadline = time.monotonic() + seconds
    while len(found) < len(request_ids) and time.monotonic() < deadline:
        reply: Any = await redis.xread(cursors, count=500, block=500)
        for key, entries in reply or []:
            stream = key.decode()
            for entry_id, fields in entries:
                cursors[stream] = entry_id.decode()
                payload, rid, _, _ = decode(fields)
                if rid in request_ids and rid not in found:
                    kind = "error" if stream == keys.errors else "success"
                    found[rid] = {"outcome": kind, "entry_id": entry_id.decode(), **payload}
        await asyncio.sleep(0)
    return found
