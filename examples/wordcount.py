"""A two-stage example pipeline: split sentences into words, then count them.

Run a stage with ``millstream worker examples.wordcount:build --stage words``.
"""

from __future__ import annotations

from collections import Counter

from streams.errors import InvalidPayload
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.settings import Settings
from streams.stage import Stage


async def split_words(message: Message) -> list[Outgoing]:
    text = message.payload.get("text")
    if not isinstance(text, str):
        raise InvalidPayload("field 'text' must be a string")
    return [Outgoing({"text": text, "words": text.lower().split()})]


async def count_words(message: Message) -> list[Outgoing]:
    counts = Counter(message.payload["words"])
    return [Outgoing({"text": message.payload["text"], "top": counts.most_common(3)})]


def build(settings: Settings) -> Pipeline:
    return Pipeline("wordcount", [
        Stage("words", "sentences", split_words, sinks=["words"], concurrency=4),
        Stage("count", "words", count_words, sinks=["counts"], concurrency=4),
    ])
