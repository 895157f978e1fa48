"""A local translation server for tests: LibreTranslate's and OpenAI's protocols, scripted faults.

``POST /translate`` answers like LibreTranslate and ``POST /v1/chat/completions``
like an OpenAI-compatible server (so ``url`` + ``/v1`` is the chat base URL).
Each request takes the next scripted ``Reply`` if there is one, else it is
answered properly with ``translate(text)`` for every text. Every request is
recorded, with the loop time it arrived at. A ``Reply(hang=True)`` never
answers (until the server stops): the client's timeout is what ends it.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from processors.translate.translator import TranslateSettings


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted answer: ``body`` replaces the whole reply, ``content`` only the chat message."""

    status: int = 200
    body: str | None = None
    content: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    hang: bool = False


@dataclass(frozen=True, slots=True)
class Seen:
    path: str
    body: Any
    headers: Mapping[str, str]
    at: float


class FakeTranslateServer:
    """``async with FakeTranslateServer() as server: ... server.url ...`` on 127.0.0.1, free port."""

    def __init__(self, translate: Callable[[str], str] = lambda text: f"[ko] {text}",
                 api_key: str = "") -> None:
        self.translate, self.api_key = translate, api_key
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def settings(self, provider: str, **fields: Any) -> TranslateSettings:
        """Settings for ``provider`` (libretranslate or openai) pointing at this server."""
        url = self.url if provider == "libretranslate" else f"{self.url}/v1"
        model = "fake-model" if provider == "openai" else ""
        return TranslateSettings(**{"translate_provider": provider, "translate_url": url,
                                    "translate_model": model, **fields})

    def then(self, *replies: Reply) -> FakeTranslateServer:
        self.script.extend(replies)
        return self

    async def __aenter__(self) -> FakeTranslateServer:
        app = web.Application()
        app.router.add_post("/translate", self._libre)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._release.set()  # hanging handlers finish, so cleanup does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> tuple[Any, Reply | None]:
        body = await request.json()
        loop_time = asyncio.get_running_loop().time()
        self.requests.append(Seen(request.path, body, dict(request.headers), loop_time))
        reply = self.script.popleft() if self.script else None
        if reply is not None and reply.hang:
            await self._release.wait()
        return body, reply

    async def _libre(self, request: web.Request) -> web.Response:
        body, reply = await self._take(request)
        if self.api_key and body.get("api_key") != self.api_key:
            return web.json_response({"error": "Invalid API key"}, status=403)
        if reply is not None and (reply.body is not None or reply.status != 200):
            return _raw(reply)
        return web.json_response({"translatedText": [self.translate(text) for text in body["q"]]})

    async def _chat(self, request: web.Request) -> web.Response:
        body, reply = await self._take(request)
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Incorrect API key provided"}}, status=401)
        if reply is not None and (reply.body is not None or reply.status != 200):
            return _raw(reply)
        texts = json.loads(body["messages"][-1]["content"])
        content = json.dumps([self.translate(text) for text in texts], ensure_ascii=False)
        finish = "stop"
        if reply is not None:
            content = content if reply.content is None else reply.content
            finish = reply.finish_reason
        return web.json_response({"object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish},
        ]})


def _raw(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, text=reply.body or "", headers=dict(reply.headers),
                        content_type="application/json")
