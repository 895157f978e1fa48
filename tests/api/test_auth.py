"""Bearer tokens with read and admin scopes, loopback-only without tokens, CORS off by default."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from streams.api.serve import server
from streams.api.settings import ApiSettings
from streams.errors import ConfigError
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.keys import Keys
from streams.settings import Settings, load
from streams.stage import Stage
from streams.text.redact import secret_values
from tests.support.api_server import serving

READ, ADMIN = "read-token-0123456789abcdef", "admin-token-0123456789abcdef"


async def _noop(message: Message) -> list[Outgoing]:
    return []


@pytest.fixture
def pipeline(pipeline_name: str) -> Pipeline:
    return Pipeline(pipeline_name, [Stage("work", "in", _noop)])


@pytest.fixture
def url(pipeline: Pipeline, settings: Settings, keys: Keys) -> Iterator[str]:
    api = ApiSettings(api_read_tokens=(READ,), api_admin_tokens=(ADMIN,), api_cors_origins=("https://ops.example",))
    with serving(pipeline, dataclasses.replace(settings, namespace=keys.namespace), api) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/v1/stats", "/v1/pipeline", "/v1/running", "/v1/tasks", "/v1/dlq",
                                  "/v1/tasks/r1", "/v1/events"])
async def test_every_read_route_needs_a_token(client: httpx.AsyncClient, path: str) -> None:
    for headers in ({}, _bearer("wrong-token-0123456789abcdef"), {"Authorization": f"Basic {READ}"}):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 401, (path, headers)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json() == {"detail": "missing or invalid bearer token"}


async def test_read_tokens_read_and_only_admin_tokens_change_things(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/stats", headers=_bearer(READ))).status_code == 200
    assert (await client.get("/v1/stats", headers=_bearer(ADMIN))).status_code == 200
    for method, path in [("POST", "/v1/tasks"), ("POST", "/v1/stages/work/pause"),
                         ("POST", "/v1/stages/work/resume"), ("POST", "/v1/dlq/replay"),
                         ("POST", "/v1/dlq/purge"), ("POST", "/v1/status/clean")]:
        body = {"n": 1} if path == "/v1/tasks" else {"dry_run": True} if "dlq" in path else None
        refused = await client.request(method, path, json=body, headers=_bearer(READ))
        assert refused.status_code == 403, path
        assert refused.json() == {"detail": "this route needs the admin scope"}
        allowed = await client.request(method, path, json=body, headers=_bearer(ADMIN))
        assert allowed.status_code in (200, 202), (path, allowed.text)


async def test_health_needs_no_token_and_answers_security_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in answer.headers["content-security-policy"]


async def test_cors_answers_only_configured_origins(client: httpx.AsyncClient, pipeline: Pipeline,
                                                    settings: Settings) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    known = await client.options("/v1/stats", headers={"Origin": "https://ops.example", **preflight})
    other = await client.options("/v1/stats", headers={"Origin": "https://evil.example", **preflight})
    assert known.headers.get("access-control-allow-origin") == "https://ops.example"
    assert "access-control-allow-origin" not in other.headers
    with serving(pipeline, settings) as base:  # the default: no CORS at all
        async with httpx.AsyncClient(base_url=base) as http:
            off = await http.options("/v1/stats", headers={"Origin": "https://ops.example", **preflight})
            got = await http.get("/v1/stats", headers={"Origin": "https://ops.example"})
    assert "access-control-allow-origin" not in off.headers
    assert "access-control-allow-origin" not in got.headers


def test_without_tokens_the_api_binds_to_loopback_only_and_says_so(pipeline: Pipeline, settings: Settings,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "millstream.api"):
        open_server = server(pipeline, settings, ApiSettings(api_host="0.0.0.0"))
    assert open_server.config.host == "127.0.0.1"
    assert "binding to 127.0.0.1 only, not 0.0.0.0" in caplog.text
    guarded = server(pipeline, settings, ApiSettings(api_host="0.0.0.0", api_read_tokens=(READ,)))
    assert guarded.config.host == "0.0.0.0"


def test_tokens_are_long_secrets_each_masked_in_logs() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        ApiSettings(api_admin_tokens=("short",))
    environ = {"MILLSTREAM_API_READ_TOKENS": f"{READ},{ADMIN}"}
    assert load(ApiSettings, environ).api_read_tokens == (READ, ADMIN)
    assert {READ, ADMIN} <= set(secret_values(environ))
    assert READ not in repr(load(ApiSettings, environ))


def test_a_token_is_compared_against_every_configured_one() -> None:
    api = ApiSettings(api_read_tokens=(READ, "second-read-token-0123456789"), api_admin_tokens=(ADMIN,))
    assert api.scope_of(READ) == api.scope_of("second-read-token-0123456789") == "read"
    assert api.scope_of(ADMIN) == "admin"
    assert api.scope_of(READ[:-1]) is None and api.scope_of("") is None and api.scope_of(READ + "x") is None
