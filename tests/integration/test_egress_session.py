"""EgressClient against a real server on 127.0.0.1: no redirects, no proxies from the environment, no cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from processors.egress.http import EgressClient
from processors.egress.policy import AddressPolicy, EgressRefused

LOOPBACK = AddressPolicy.parse(("127.0.0.1",))


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.path == "/redirect":
            return web.Response(status=302, headers={"Location": "/target"})
        response = web.Response(text="ok")
        response.set_cookie("session", "from-the-server")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[EgressClient]:
    egress = EgressClient(LOOPBACK)
    yield egress
    await egress.aclose()


async def test_a_redirect_is_returned_not_followed(server, client: EgressClient) -> None:
    base, seen = server
    async with client.request("GET", f"{base}/redirect") as response:
        assert (response.status, response.headers["Location"]) == (302, "/target")
    assert len(seen) == 1


async def test_proxies_from_the_environment_are_not_used(server, client, monkeypatch) -> None:
    base, seen = server
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: using it would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with client.request("GET", f"{base}/x") as response:
        assert response.status == 200
    assert len(seen) == 1


async def test_cookies_a_server_sets_are_never_sent_back(server, client) -> None:
    base, seen = server
    for _ in range(2):
        async with client.request("GET", f"{base}/x") as response:
            assert response.cookies["session"].value == "from-the-server"
    assert [headers.get("Cookie") for headers in seen] == [None, None]


async def test_a_refused_url_raises_before_any_connection(server) -> None:
    base, seen = server
    client = EgressClient(AddressPolicy())
    with pytest.raises(EgressRefused, match=r"^its address is loopback \(RFC 1122\)$"):
        client.request("GET", f"{base}/x")
    await client.aclose()
    assert seen == []
