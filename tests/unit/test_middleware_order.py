"""Middleware composes as documented: the first listed runs outermost; batched stages refuse it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from streams.engine.runner import StageRunner
from streams.message import Handler, Message, Outgoing
from streams.metrics import Metrics
from streams.pipeline import Pipeline, chain
from streams.settings import Settings
from streams.stage import Stage


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


async def _batch(messages: Sequence[Message]) -> list[list[Outgoing]]:
    return [[] for _ in messages]


def test_a_batched_stage_in_a_pipeline_with_middleware_is_refused_with_what_to_do():
    stage = Stage("embed", "in", _batch, batched=True)
    with pytest.raises(ValueError) as refused:
        Pipeline("p", [stage], middleware=[tag("a", [])])
    assert str(refused.value) == (
        "stage 'embed' is batched, and middleware wraps the handler of one message: it would not run "
        "for its batches. Run this stage in a pipeline without middleware, or do the middleware's work "
        "inside the batch processor")
    assert Pipeline("p", [stage]).stage("embed") is stage  # without middleware it is fine


def test_a_runner_given_middleware_for_a_batched_stage_refuses_before_touching_its_transport():
    stage = Stage("embed", "in", _batch, batched=True)
    with pytest.raises(ValueError, match="stage 'embed' is batched"):
        StageRunner(None, stage, Settings(), Metrics(CollectorRegistry()), [tag("a", [])])  # type: ignore[arg-type]
