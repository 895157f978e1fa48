"""Screenshots of each view: into docs/ when ``bench/screenshots.py`` runs it, else into a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.browser.stack import Stack
from tests.browser.support import expect, wait_live

TARGET = os.environ.get("DASHBOARD_SCREENSHOTS", "")


def test_screenshots_of_every_view(page: Any, base_url: str, stack: Stack, tmp_path: Path):
    out = Path(TARGET) if TARGET else tmp_path
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
    for view in ("stages", "running", "task", "dlq"):
        shot = (out / f"dashboard-{view}.png").read_bytes()
        assert shot.startswith(b"\x89PNG") and int.from_bytes(shot[16:20], "big") == 1280  # width, from IHDR
