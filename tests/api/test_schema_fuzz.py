"""Schemathesis fuzzes every operation of the API (docs/API.md): no input gets a 5xx, every
response matches the OpenAPI schema the app itself publishes.

The app runs under uvicorn in a thread on a free loopback port, on the session's real
redis-server, with an admin token; schemathesis runs as its CLI (``st``) against
``/openapi.json``, bounded by examples per operation so it takes well under two minutes.
The live-event routes answer a stream that never ends, so they are left out here
(tests of their own read them).
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.publisher import Publisher
from streams.redis.server import free_port
from streams.settings import Settings
from streams.stage import Stage
from tests.conftest import IN_CI

TOKEN = "fuzz-admin-token-0123456789"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
ST = Path(sys.executable).parent / "st"


def _require(present: bool, what: str) -> None:
    """Skip locally, fail in CI, when ``what`` is missing."""
    if not present:
        message = f"{what} is missing (pip install -e '.[api,test]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


async def _copy(message: Message) -> list[Outgoing]:
    return [Outgoing(message.payload)]


def tiny_pipeline(name: str) -> Pipeline:
    return Pipeline(name, [Stage("work", "in", _copy, sinks=["out"]), Stage("finish", "out", _copy)])


@pytest.fixture
def api_url(settings: Settings, pipeline_name: str) -> Iterator[str]:
    for module in ("fastapi", "uvicorn", "schemathesis"):
        _require(importlib.util.find_spec(module) is not None, f"the {module} package")
    _require(ST.exists(), f"schemathesis's CLI ({ST})")
    import uvicorn

    from streams.api.app import create_app
    from streams.api.settings import ApiSettings

    api = ApiSettings(api_admin_tokens=(TOKEN,), api_read_tokens=("fuzz-read-token-0123456789",))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tiny_pipeline(pipeline_name), settings, api),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="fuzzed-api")
    thread.start()
    try:
        while not server.started:  # uvicorn sets it once the socket listens
            if not thread.is_alive():
                pytest.fail("the API did not start (see the log above)")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


async def _some_records(settings: Settings, pipeline_name: str) -> None:
    """A task with a status record, so GET routes have something besides 404 to answer."""
    from streams.redis.connection import connect
    from streams.redis.keys import Keys

    redis = connect(settings)
    try:
        keys = Keys(settings.namespace, pipeline_name)
        await Publisher(redis, keys).publish("in", {"request_id": "r1", "n": 1}, "r1")
    finally:
        await redis.aclose()


def test_no_operation_answers_5xx_or_outside_its_schema(api_url: str, settings: Settings, pipeline_name: str,
                                                        tmp_path: Path):
    asyncio.run(_some_records(settings, pipeline_name))
    command = [
        str(ST), "run", f"{api_url}/openapi.json", "--checks", CHECKS,
        "--header", f"Authorization: Bearer {TOKEN}",
        "--max-examples", "30", "--workers", "2", "--seed", "13", "--no-shrink",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
        "--exclude-path-regex", r".*/events$", "--generation-database", "none",
        "--no-color", "--output-sanitize", "false",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, f"schemathesis found problems:\n{done.stdout[-20000:]}\n{done.stderr[-3000:]}"
    reports = list(tmp_path.glob("*.xml"))
    cases = sum(report.read_text().count("<testcase") for report in reports)
    assert cases >= 15, f"schemathesis ran only {cases} operations: is the schema served whole?"
