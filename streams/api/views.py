"""Status records as the API shows them: a task with its history, attempts, last error and outcome.

A status record (streams.redis.tasks) is the task's last transition, with the
earlier ones in ``trail`` (oldest first) and what a transition added in
``detail``: ``error`` and ``attempt`` for a retry or a failure, ``result``
for the payload a result stream got.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.pipeline import Pipeline
from streams.redis.keys import ERRORS

FINAL = frozenset({"done", "failed", "dead_lettered", "cancelled"})
FAILED = frozenset({"failed", "dead_lettered"})


@dataclass(frozen=True, slots=True)
class Ends:
    """Which transitions end a task, from the pipeline's shape.

    Followers are stages reading the errors stream or a result stream: they act
    after the task's end (mirrors, webhooks) and their transitions never change
    its outcome. A finisher's every sink is a result stream: forwarding ends the task.
    """

    followers: frozenset[str] = frozenset()
    finishers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, pipeline: Pipeline) -> Ends:
        ends, results = {ERRORS, *pipeline.results}, set(pipeline.results)
        return cls(frozenset(s.name for s in pipeline.stages if s.source in ends),
                   frozenset(s.name for s in pipeline.stages if s.sinks and set(s.sinks) <= results))

    def outcome(self, stage: str | None, state: str | None) -> str | None:
        """"completed", "failed", "cancelled", or None: the transition did not end the task."""
        if stage in self.followers:
            return None
        if state in FAILED:
            return "failed"
        if state == "cancelled":
            return "cancelled"
        if state == "done" or (state == "forwarded" and stage in self.finishers):
            return "completed"
        return None


def _step(record: dict[str, Any]) -> dict[str, Any]:
    step = {name: record.get(name) for name in ("stage", "state", "entry", "at")}
    if isinstance(record.get("detail"), dict):
        step["detail"] = record["detail"]
    return step


def history(record: dict[str, Any]) -> list[dict[str, Any]]:
    trail = record.get("trail")
    earlier = [_step(r) for r in trail if isinstance(r, dict)] if isinstance(trail, list) else []
    return [*earlier, _step(record)]


def _attempts(steps: list[dict[str, Any]]) -> int:
    """Attempts at the current stage: one, and one more per retry since the task came to it."""
    stage, attempts = steps[-1]["stage"], 1
    for step in reversed(steps[:-1] if steps[-1]["state"] != "retrying" else steps):
        if step["stage"] != stage:
            break
        if step["state"] == "retrying":
            attempts += 1
    return attempts


def task(request_id: str, record: dict[str, Any], ends: Ends) -> dict[str, Any]:
    """The task as the API shows it: its state is its last step outside the followers (``Ends``)."""
    steps = history(record)
    own = [s for s in steps if s["stage"] not in ends.followers] or steps
    last = own[-1]
    details = [s["detail"] for s in steps if "detail" in s]
    errors = [d["error"] for d in details if isinstance(d.get("error"), str)]
    results = [d["result"] for d in details if "result" in d]
    result = ends.outcome(last["stage"], last["state"])
    return {
        "request_id": request_id, "state": last["state"], "stage": last["stage"], "entry": last["entry"],
        "at": last["at"], "final": result is not None, "result": result, "attempts": _attempts(own),
        "last_error": errors[-1] if errors else None, "outcome": results[-1] if results else None,
        "history": steps,
    }


