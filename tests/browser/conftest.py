"""Browser tests of the dashboard: Debian's chromium driven by Playwright, against the real API,
a real redis-server and a small real pipeline (stack.py).

One stack and one browser serve the whole session (each test gets a fresh
page); tests keep apart by the tasks and dead letters they touch. Without
playwright or chromium the tests skip locally and fail in CI.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from streams.api.settings import ApiSettings
from tests.browser.stack import ADMIN_TOKEN, READ_TOKEN, Stack, seed
from tests.conftest import IN_CI
from tests.support.redis_server import RedisServer


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("chromium is not installed (scripts/setup.sh installs it)")
    return str(path)


# Package scope, not session: sync Playwright keeps an event loop running in this thread until it
# stops, and the asyncio tests of the packages after this one need the thread free of it.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (the dev extras install it)")
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    running = Stack(redis_server.url, f"b{uuid.uuid4().hex[:8]}")
    try:
        running.start_workers()
        seed(running)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def base_url(stack: Stack) -> str:
    """The API without tokens (open to this machine)."""
    return stack.serve(ApiSettings())


@pytest.fixture(scope="package")
def secured_url(stack: Stack) -> str:
    """The same pipeline's API with a read and an admin token."""
    return stack.serve(ApiSettings(api_read_tokens=(READ_TOKEN,), api_admin_tokens=(ADMIN_TOKEN,)))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh 1280x800 page; the test fails if the page threw or the CSP refused something."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    context.set_default_timeout(10_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on("console", lambda m: problems.append(f"console: {m.text}")
              if "Content Security Policy" in m.text else None)
    yield opened
    context.close()
    assert not problems, problems
