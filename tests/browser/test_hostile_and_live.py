"""Hostile text stays text; live updates arrive without a reload; tokens are asked for and checked."""

from __future__ import annotations

from typing import Any

import orjson

from tests.browser.stack import ADMIN_TOKEN, BIG, HOSTILE_NOTE, READ_TOKEN
from tests.browser.support import expect, letters_of, wait_live


def fits_the_window(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_hostile_payload_is_shown_as_text_and_the_page_still_works(page: Any, base_url: str, stack: Any):
    letter_id = letters_of(stack, "ingest")["hostile"][b"id"].decode()
    page.goto(base_url + "/#/dlq?stage=ingest")
    row = page.locator(f'tr[data-id="{letter_id}"]')
    expect(row).to_contain_text("<img src=x onerror=")
    assert fits_the_window(page)
    row.locator("a").click()
    expect(page.locator('[data-field="reason"]')).to_contain_text("<script>window.__pwned=2</script>")
    assert HOSTILE_NOTE in (page.locator("pre.error-text").text_content() or "")
    assert page.get_by_label("payload").evaluate("t => t.value.length") > len(BIG)
    assert page.locator('[data-field="reason"] .data').evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    page.goto(base_url + "/#/task/hostile")
    expect(page.locator('[data-field="last_error"]')).to_contain_text("\u202eevil")
    assert fits_the_window(page)
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.get_by_role("link", name="Stages").click()
    expect(page.locator('[data-stage="ingest"]')).to_be_visible()


def test_live_events_update_the_feed_and_the_figures_without_a_reload(page: Any, base_url: str, stack: Any):
    page.goto(base_url + "/#/stages")
    wait_live(page)
    page.evaluate("window.__sameDocument = true")
    completed = page.locator('[data-stage="work"] [data-field="completed"]')
    before = completed.text_content()
    stack.publish("tasks", [({"n": n}, f"live-{n}") for n in range(3)])
    expect(page.locator('#feed li[data-event="job-progress"]', has_text="live-2").first).to_be_visible()
    expect(completed).not_to_have_text(before or "")
    page.locator('[data-stage="archive"]').get_by_role("button", name="Pause").click()
    expect(page.locator('#feed li[data-event="stage-paused"]').first).to_contain_text("archive")
    page.locator('[data-stage="archive"]').get_by_role("button", name="Resume").click()
    expect(page.locator('#feed li[data-event="stage-resumed"]').first).to_contain_text("archive")
    assert page.evaluate("window.__sameDocument") is True


def test_the_token_prompt_refuses_a_wrong_token_and_keeps_a_good_one(page: Any, secured_url: str, stack: Any):
    page.goto(secured_url + "/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator(".banner-error")).to_have_count(0)  # the prompt says it: no banner under it
    page.locator("#token-input").fill("wrong-token-000000000")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#token-reason")).to_contain_text("refused")
    expect(dialog).to_be_visible()
    page.locator("#token-input").fill(READ_TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(dialog).not_to_be_visible()
    expect(page.locator("#pipeline-name")).to_have_text(stack.pipeline.name)
    expect(page.locator("#live-state")).to_have_text("live")
    assert page.evaluate("sessionStorage.getItem('millstream.token')") == READ_TOKEN
    page.locator('[data-stage="archive"]').get_by_role("button", name="Pause").click()  # read scope only
    expect(page.locator(".banner-error")).to_contain_text("admin scope")
    page.reload()  # the token survives a reload of the tab
    expect(page.locator('[data-stage="archive"]')).to_be_visible()
    expect(dialog).not_to_be_visible()
    assert ADMIN_TOKEN not in page.content()


def test_a_dropped_stream_reconnects_with_last_event_id_and_gets_what_it_missed(page: Any, base_url: str,
                                                                                stack: Any):
    [(newest, _)] = stack.call(stack.redis.xrevrange(stack.keys.events, count=1))
    resume_at = f"{newest.decode()}.0"
    stack.publish("tasks", [({"n": 1}, "missed-1")])  # after resume_at: only the backlog has it
    asked: list[str | None] = []

    def first_stream_drops(route: Any) -> None:
        asked.append(route.request.headers.get("last-event-id"))
        if len(asked) > 1:
            route.fallback()
            return
        canned = {"jobId": "before-the-drop", "stage": "ingest", "state": "forwarded", "at": 0}
        route.fulfill(status=200, content_type="text/event-stream",
                      body=f"id: {resume_at}\nevent: job-progress\ndata: {orjson.dumps(canned).decode()}\n\n")

    page.route("**/v1/events", first_stream_drops)
    page.goto(base_url + "/#/stages")
    expect(page.locator("#feed li", has_text="before-the-drop")).to_be_visible()
    expect(page.locator("#feed li", has_text="missed-1").first).to_be_visible()
    assert asked[:2] == [None, resume_at]
