"""A LibreTranslate-compatible provider: the texts of one image in one request.

``POST {url}/translate`` with ``{"q": [texts], "source", "target", "format": "text",
"api_key"?}`` answers ``{"translatedText": [translations]}`` in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.translate.http import JsonPoster, MalformedReply, checked_strings, translate_batch
from processors.translate.metrics import TranslateMetrics


def endpoint(url: str) -> str:
    """``url`` is the server's base URL; one that already names /translate is kept."""
    base = url.rstrip("/")
    return base if base.endswith("/translate") else f"{base}/translate"


def parse_reply(data: Any, count: int) -> list[str]:
    if not isinstance(data, dict) or "translatedText" not in data:
        raise MalformedReply("no 'translatedText' in the reply", str(data))
    return checked_strings(data["translatedText"], count)


class LibreTranslator:
    """Translator over a LibreTranslate server (or anything speaking its /translate)."""

    def __init__(self, poster: JsonPoster, metrics: TranslateMetrics, url: str,
                 source: str, target: str, api_key: str = "") -> None:
        self._poster, self._metrics = poster, metrics
        self._endpoint, self._source, self._target, self._api_key = endpoint(url), source, target, api_key

    async def translate(self, texts: Sequence[str]) -> list[str]:
        return await translate_batch(texts, self._send, self._metrics)

    async def aclose(self) -> None:
        await self._poster.aclose()

    async def _send(self, texts: list[str]) -> list[str]:
        body: dict[str, Any] = {"q": texts, "source": self._source, "target": self._target, "format": "text"}
        if self._api_key:
            body["api_key"] = self._api_key
        return await self._poster.post(self._endpoint, body, {}, lambda data: parse_reply(data, len(texts)))
