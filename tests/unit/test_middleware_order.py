"""Middleware composes as documented: the first listed runs outermost."""

from __future__ import annotations

from collections.abc import Sequence

from streams.message import Handler, Message, Outgoing
from streams.pipeline import chain


def tag(name: str, trail: list[str]):
    def middleware(handler: Handler) -> Handler:
        async def wrapped(message: Message) -> Sequence[Outgoing]:
            trail.append(f"{name}>")
            result = await handler(message)
            trail.append(f"<{name}")
            return result

        return wrapped

    return middleware


async def test_first_middleware_listed_runs_outermost():
    trail: list[str] = []

    async def handler(message: Message) -> list[Outgoing]:
        trail.append("handler")
        return [Outgoing(message.payload)]

    wrapped = chain(handler, [tag("a", trail), tag("b", trail)])
    out = await wrapped(Message("1-0", "in", {"x": 1}, "r"))
    assert out == [Outgoing({"x": 1})]
    assert trail == ["a>", "b>", "handler", "<b", "<a"]
