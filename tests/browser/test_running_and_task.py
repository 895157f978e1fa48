"""Running and Task views: the held task with its elapsed time ticking; a task's history and outcome."""

from __future__ import annotations

from typing import Any

from tests.browser.stack import BACKLOG
from tests.browser.support import expect


def test_running_lists_the_held_task_and_its_elapsed_time_ticks(page: Any, base_url: str):
    page.goto(base_url + "/#/running")
    row = page.locator('[data-table="running"] tr[data-request-id="r-hold"]')
    expect(row).to_contain_text("work")
    expect(row).to_contain_text("c-browser")
    elapsed = row.locator('[data-field="elapsed"]')
    first = elapsed.text_content()
    expect(elapsed).not_to_have_text(first or "")  # it moves without a reload
    expect(page.locator('[data-table="queued"] tr[data-stage="archive"] [data-field="queued"]')).to_have_text(str(BACKLOG))


def test_a_finished_task_shows_its_history_and_its_image_url_as_a_link(page: Any, base_url: str):
    page.goto(base_url + "/#/task")
    page.get_by_label("request id").fill("r-done")
    page.get_by_role("button", name="Look up").click()
    expect(page).to_have_url(base_url + "/#/task/r-done")
    history = page.locator('[data-block="history"] li')
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text("publish")
    expect(history.nth(2)).to_contain_text("work")
    expect(page.locator('[data-field="state"]')).to_contain_text("forwarded")
    link = page.locator('[data-block="outcome"] a')
    expect(link).to_have_attribute("href", "https://images.example/r-done.png")


def test_a_dead_lettered_task_shows_its_state_and_last_error(page: Any, base_url: str):
    page.goto(base_url + "/#/task/p-a2")
    expect(page.locator('[data-field="state"]')).to_contain_text("dead_lettered")
    expect(page.locator('[data-field="last_error"]')).to_contain_text("bad-a second")


def test_an_unknown_task_shows_an_empty_state(page: Any, base_url: str):
    page.goto(base_url + "/#/task/nobody-knows")
    expect(page.locator(".task-result .empty")).to_contain_text("no task")
    expect(page.locator(".banner-error")).to_have_count(0)
