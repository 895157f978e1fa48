"""Stages view: the figures the API reports, and pause/resume from the UI (seen in Redis)."""

from __future__ import annotations

from typing import Any

from tests.browser.stack import BACKLOG, Stack
from tests.browser.support import expect


def test_stages_show_the_lag_of_a_backlog_and_every_stage(page: Any, base_url: str, stack: Stack):
    page.goto(base_url + "/")
    expect(page.locator("#pipeline-name")).to_have_text(stack.pipeline.name)
    for name in ("ingest", "work", "archive"):
        expect(page.locator(f'[data-stage="{name}"]')).to_be_visible()
    archive = page.locator('[data-stage="archive"]')
    # The seeded backlog, and what other tests of the session added to it (the screenshots do).
    backlog = stack.call(stack.redis.xlen(stack.keys.stream("backlog")))
    assert backlog >= BACKLOG
    expect(archive.locator('[data-field="lag"]')).to_have_text(str(backlog))
    expect(archive.locator('[data-field="waiting"]')).to_have_text(str(backlog))
    dead = stack.call(stack.redis.xlen(stack.keys.dlq("ingest")))
    expect(page.locator('[data-stage="ingest"] [data-field="dead"]')).to_have_text(str(dead))
    expect(page.locator('[data-stage="work"] [data-field="active"]')).to_have_text("1")  # the held task


def test_pausing_a_stage_from_the_ui_pauses_it_in_redis(page: Any, base_url: str, stack: Stack):
    page.goto(base_url + "/#/stages")
    card = page.locator('[data-stage="archive"]')
    card.get_by_role("button", name="Pause").click()
    expect(card.locator(".state")).to_have_text("paused")
    paused = stack.wait(lambda: stack.redis.hexists(stack.keys.paused, "archive"))
    assert paused
    card.get_by_role("button", name="Resume").click()
    expect(card.locator(".state")).to_have_text("no live consumer")  # no worker runs archive
    assert not stack.call(stack.redis.hexists(stack.keys.paused, "archive"))
