"""The shapes of the API's answers, for the OpenAPI schema (and schemathesis's checks of it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Message(BaseModel):
    detail: str


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problems(BaseModel):
    detail: list[Problem]


class Published(BaseModel):
    request_id: str
    entry: str


class Accepted(BaseModel):
    stream: str
    tasks: list[Published]


class Step(BaseModel):
    stage: str | None
    state: str | None
    entry: str | None
    at: int | None
    detail: dict[str, Any] | None = None


class Task(BaseModel):
    request_id: str
    state: str | None
    stage: str | None
    entry: str | None
    at: int | None
    final: bool
    result: str | None
    attempts: int
    last_error: str | None
    outcome: Any
    history: list[Step]


class TaskSummary(BaseModel):
    model_config = {"extra": "allow"}
    request_id: str
    stage: str | None
    state: str | None
    entry: str | None
    at: int | None


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    limit: int
    next: str | None


class StageFigures(BaseModel):
    stage: str
    stream: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    dead: int
    paused: bool
    lag: int
    lag_seconds: float
    oldest_pending_seconds: float
    consumers: int
    live_consumers: int
    throughput: float | None
    by_priority: dict[str, int] | None = None  # waiting per level, for a stage read by priority


class Stats(BaseModel):
    pipeline: str
    at: int
    stages: list[StageFigures]


class StageInfo(BaseModel):
    name: str
    source: str
    sinks: list[str]
    group: str
    paused: bool


class PipelineInfo(BaseModel):
    name: str
    entry: str
    streams: list[str]
    stages: list[StageInfo]
    auth: bool


class RunningTask(BaseModel):
    request_id: str
    stage: str
    consumer: str
    entry: str
    started_at: float
    elapsed_seconds: float
    deliveries: int


class RunningSummary(BaseModel):
    running: int
    queued: int
    stages: int


class Running(BaseModel):
    running: list[RunningTask]
    queued: dict[str, int]
    summary: RunningSummary


class PauseState(BaseModel):
    stage: str
    paused: bool
    by: str | None = None
    at: int | None = None


class CancelRequest(BaseModel):
    reason: str = Field("", max_length=500, description="Why: the task's error record says it")


class Cancelled(BaseModel):
    request_id: str
    cancelled: bool
    by: str
    at: int


class Cleaned(BaseModel):
    removed: int
