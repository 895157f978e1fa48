"""A task's status record through a whole pipeline: its history, attempts, last error and outcome."""

from __future__ import annotations

import dataclasses

from streams.testing import run_pipeline
from tests.unit.test_testing_harness import pipeline


async def test_a_tasks_record_tells_its_whole_story_from_publish_to_its_result():
    results = dataclasses.replace(pipeline(), results=("done",))
    async with run_pipeline(results) as run:
        for rid, kind in [("fl", "flaky"), ("dd", "doomed")]:
            await run.publish("tasks", {"kind": kind}, rid)
        await run.drained()

        flaky, doomed = run.status("fl"), run.status("dd")
        assert flaky is not None and doomed is not None
        story = [(r["stage"], r["state"]) for r in [*flaky["trail"], flaky]]
        assert story == [("publish", "queued"), ("parse", "retrying"), ("parse", "forwarded"),
                         ("finish", "forwarded")]
        assert flaky["trail"][1]["detail"] == {"error": "RetryableError: flaky: upstream unavailable",
                                               "attempt": 1}
        assert flaky["detail"] == {"result": {"kind": "flaky", "attempt": 2, "done": True}}
        assert [(r["stage"], r["state"]) for r in doomed["trail"]] == [
            ("publish", "queued"), ("parse", "retrying")]
        assert doomed["detail"] == {"error": "RetryableError: doomed: upstream unavailable",
                                    "reason": "gave up after 2 attempts: RetryableError: doomed: upstream unavailable"}
        assert run.broker.counts == {"publish/queued": 2, "parse/retrying": 2, "parse/forwarded": 1,
                                     "parse/dead_lettered": 1, "finish/forwarded": 1}
