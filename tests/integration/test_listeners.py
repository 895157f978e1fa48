"""Every HTTP listener of millstream binds to loopback unless it is configured otherwise.

The listening sockets are read from /proc/net/tcp and /proc/net/tcp6 (the
kernel's own table), so the test sees the address actually bound, not the
one a setting names.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from processors.local import up as cli_up
from streams.service.endpoint import serve_metrics
from streams.settings import Settings, from_env
from tests.support.redis_server import free_port

LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket in LISTEN state on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == LISTEN and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, words))
    return found


@pytest.fixture(autouse=True)
def linux_only() -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads the kernel's socket table in /proc (Linux)")


def test_the_metrics_host_defaults_to_loopback_in_the_settings_and_from_the_environment() -> None:
    assert Settings().metrics_host == "127.0.0.1"
    assert from_env({}).metrics_host == "127.0.0.1"


def test_worker_and_exporter_metrics_listen_on_loopback_only_by_default() -> None:
    port = free_port()
    serve_metrics(Settings(metrics_port=port), CollectorRegistry())
    assert listening_addresses(port) == {"127.0.0.1"}


def test_worker_metrics_listen_where_the_metrics_host_says() -> None:
    port = free_port()
    serve_metrics(Settings(metrics_port=port, metrics_host="0.0.0.0"), CollectorRegistry())
    assert listening_addresses(port) == {"0.0.0.0"}


def test_millstream_up_binds_its_http_server_to_loopback_unless_told_otherwise() -> None:
    assert inspect.signature(cli_up.up).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(cli_up.Stack).parameters["host"].default == "127.0.0.1"


@pytest.mark.parametrize(("host", "bound", "public"), [
    ("127.0.0.1", {"127.0.0.1"}, "http://127.0.0.1:{port}"),
    ("0.0.0.0", {"0.0.0.0"}, "http://127.0.0.1:{port}"),
])
async def test_the_up_http_server_listens_on_the_host_it_is_given(
    tmp_path: Path, settings: Settings, host: str, bound: set[str], public: str
) -> None:
    port = free_port()
    stack = cli_up.Stack(settings, port, tmp_path, external_redis=True, host=host)
    runner = await cli_up._serve(stack, settings.redis_url, "127.0.0.1:1", asyncio.Event())
    try:
        assert listening_addresses(port) == bound
        assert stack.public_url == public.format(port=port)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("tokens", "bound"), [((), {"127.0.0.1"}), (("a-read-token-0123456789",), {"0.0.0.0"})])
def test_the_api_listens_on_loopback_without_tokens_whatever_the_host(
        settings: Settings, tokens: tuple[str, ...], bound: set[str]) -> None:
    from streams.api.settings import ApiSettings
    from streams.pipeline import Pipeline
    from tests.support.api_server import serving

    pipeline = Pipeline("listeners", [])
    with serving(pipeline, settings, ApiSettings(api_host="0.0.0.0", api_read_tokens=tokens)) as url:
        assert listening_addresses(int(url.rsplit(":", 1)[1])) == bound
