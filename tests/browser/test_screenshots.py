"""Screenshots of each view for docs/DASHBOARD.md: run by ``bench/screenshots.py``, skipped otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.stack import Stack
from tests.browser.support import expect, wait_live

TARGET = os.environ.get("DASHBOARD_SCREENSHOTS", "")


@pytest.mark.skipif(not TARGET, reason="DASHBOARD_SCREENSHOTS names the folder; bench/screenshots.py sets it")
def test_screenshots_of_every_view(page: Any, base_url: str, stack: Stack):
    out = Path(TARGET)
    out.mkdir(parents=True, exist_ok=True)
    page.goto(base_url + "/#/stages")
    wait_live(page)
    stack.publish("tasks", [({"n": n}, f"shot-{n}") for n in range(12)])  # some live events in the feed
    expect(page.locator('[data-stage="archive"] [data-field="lag"]')).not_to_have_text("\u2013")
    expect(page.locator("#feed li").first).to_be_visible()
    lag = page.locator('[data-stage="archive"] [data-field="lag"]')
    for round_ in range(3):  # a growing backlog, so that the sparkline has a shape
        before = lag.text_content() or ""
        stack.publish("backlog", [({"n": n}, f"shot-b{round_}-{n}") for n in range(4 + 3 * round_)])
        expect(lag).not_to_have_text(before)
    expect(page.locator(".spark polyline")).to_have_count(3)
    page.screenshot(path=str(out / "dashboard-stages.png"))
    page.goto(base_url + "/#/running")
    expect(page.locator('[data-table="running"] tr[data-request-id="r-hold"]')).to_be_visible()
    page.screenshot(path=str(out / "dashboard-running.png"))
    page.goto(base_url + "/#/task/r-done")
    expect(page.locator('[data-block="history"] li')).to_have_count(3)
    page.screenshot(path=str(out / "dashboard-task.png"))
    page.goto(base_url + "/#/dlq")
    expect(page.locator('[data-table="dlq"] tbody tr').first).to_be_visible()
    page.screenshot(path=str(out / "dashboard-dlq.png"))
