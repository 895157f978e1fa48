"""An OpenAI-compatible chat-completions provider: the texts of one image in one request.

``POST {url}/chat/completions`` with ``model`` and ``messages``: the user
message is a JSON array of the texts, and the system message asks for a JSON
array of their translations, same length, same order. The reply is checked:
an answer that is not such an array (wrong length, not strings, cut off) is a
``MalformedReply``, asked again a bounded number of times and then permanent
(see processors.translate.http). No ``temperature``: some models refuse any
value but their default, and the prompt pins the format well enough.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from processors.translate.http import JsonPoster, MalformedReply, checked_strings, translate_batch
from processors.translate.metrics import TranslateMetrics

LANGUAGES = {"zh": "Simplified Chinese", "zh-hans": "Simplified Chinese", "zh-hant": "Traditional Chinese",
             "ko": "Korean", "en": "English", "ja": "Japanese", "vi": "Vietnamese", "th": "Thai"}
PROMPT = (
    "You translate the text found in e-commerce product images from {source} to {target}. "
    "The user message is a JSON array of strings. Reply with a JSON array of exactly {count} strings: "
    "the translation of each input string, in the same order. Keep numbers, units, sizes, model numbers "
    "and brand names as they are. Reply with the JSON array only, no notes."
)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def language(code: str) -> str:
    return LANGUAGES.get(code.lower(), code)


def parse_content(content: str, count: int) -> list[str]:
    """The array in a model's answer; tolerates a Markdown code fence around it."""
    body = _FENCE.sub("", content.strip())
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end < start:
        raise MalformedReply("no JSON array in the answer", body)
    try:
        items = json.loads(body[start:end + 1])
    except ValueError as error:
        raise MalformedReply(f"the answer's array is not valid JSON ({error})", body) from None
    return checked_strings(items, count)


def parse_reply(data: Any, count: int) -> list[str]:
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise MalformedReply("no choices[0].message.content in the reply", str(data)) from None
    if choice.get("finish_reason") == "length":
        raise MalformedReply("the answer was cut off (finish_reason=length)")
    if not isinstance(content, str):
        raise MalformedReply(f"message content is {type(content).__name__}, not text")
    return parse_content(content, count)


class ChatTranslator:
    """Translator over an OpenAI-compatible /chat/completions endpoint."""

    def __init__(self, poster: JsonPoster, metrics: TranslateMetrics, url: str, model: str,
                 source: str, target: str, api_key: str = "") -> None:
        self._poster, self._metrics, self._model = poster, metrics, model
        self._endpoint = url.rstrip("/") + "/chat/completions"
        self._source, self._target = language(source), language(target)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def translate(self, texts: Sequence[str]) -> list[str]:
        return await translate_batch(texts, self._send, self._metrics)

    async def aclose(self) -> None:
        await self._poster.aclose()

    def request(self, texts: list[str]) -> dict[str, Any]:
        system = PROMPT.format(source=self._source, target=self._target, count=len(texts))
        return {"model": self._model, "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps(texts, ensure_ascii=False)},
        ]}

    async def _send(self, texts: list[str]) -> list[str]:
        return await self._poster.post(self._endpoint, self.request(texts), self._headers,
                                       lambda data: parse_reply(data, len(texts)))
