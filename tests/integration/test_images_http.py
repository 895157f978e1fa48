"""Fetching images over http from a real aiohttp server on 127.0.0.1.

Loopback is refused by default, so tests that expect bytes to arrive allow
127.0.0.1 explicitly, as an operator would with MILLSTREAM_FETCH_ALLOW_HOSTS.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.typedefs import Handler
from PIL import Image

from processors.images.errors import (
    AddressRefused,
    ImageHttpError,
    ImageTooLarge,
    ImageTooManyPixels,
    ImageUnreachable,
    InvalidImageUrl,
    NotAnImage,
    TooManyRedirects,
    TruncatedImage,
    UnsupportedScheme,
)
from processors.images.fetch import DecodedImage, ImageFetcher, ImageSettings
from streams.errors import InvalidPayload, PermanentError, RetryableError

LOOPBACK_ALLOWED = ImageSettings(fetch_allow_hosts=("127.0.0.1",), fetch_timeout=2.0, max_image_bytes=200_000)


def encoded(size: tuple[int, int], image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 220)).save(buffer, format=image_format)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@dataclass
class Server:
    base: str
    hits: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def routes(server: Server) -> web.Application:
    png, jpeg = encoded((64, 48), "PNG"), encoded((30, 20), "JPEG")

    async def stalled(request: web.Request) -> web.Response:
        await server.release.wait()  # a barrier the test never opens: the client's deadline must fire
        return web.Response(body=png)

    async def streamed_forever(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"\xff\xd8\xff" + b"\0" * 8192)
        return response

    async def cut_short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(png))})
        await response.prepare(request)
        await response.write(png[:40])
        assert request.transport is not None
        request.transport.close()
        return response

    fixed: dict[str, Callable[[], web.Response]] = {  # a Response is sent once: make one per hit
        "/ok.png": lambda: web.Response(body=png, content_type="image/png"),
        "/ok.jpg": lambda: web.Response(body=jpeg, content_type="image/jpeg"),
        "/mislabelled": lambda: web.Response(body=png, content_type="text/html"),
        "/missing": lambda: web.Response(status=404, text="no"),
        "/gone": lambda: web.Response(status=410, text="gone"),
        "/forbidden": lambda: web.Response(status=403),
        "/broken": lambda: web.Response(status=500, text="oops"),
        "/busy": lambda: web.Response(status=503),
        "/slow-down": lambda: web.Response(status=429),
        "/page": lambda: web.Response(text="<html><body>not an image</body></html>", content_type="text/html"),
        "/truncated.png": lambda: web.Response(body=encoded((300, 300), "PNG")[:200], content_type="image/png"),
        "/bomb.png": lambda: web.Response(body=png_claiming(100_000, 100_000), content_type="image/png"),
        "/huge": lambda: web.Response(body=b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, content_type="image/png"),
        "/gzip-bomb": lambda: web.Response(body=gzip.compress(b"\x89PNG\r\n\x1a\n" + b"\0" * 5_000_000),
                                           headers={"Content-Encoding": "gzip", "Content-Type": "image/png"}),
        "/redirect-ok": lambda: web.Response(status=302, headers={"Location": "/ok.png"}),
        "/redirect-private": lambda: web.Response(status=302, headers={"Location": "http://10.0.0.5/x.png"}),
        "/redirect-metadata": lambda: web.Response(status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
        "/redirect-file": lambda: web.Response(status=302, headers={"Location": "file:///etc/passwd"}),
        "/redirect-loop": lambda: web.Response(status=307, headers={"Location": "/redirect-loop"}),
        "/redirect-nowhere": lambda: web.Response(status=302),
        "/redirect-idna": lambda: web.Response(status=302, headers={"Location": "http://10\u30020\u30020\u30025/x.png"}),
        "/redirect-numeric": lambda: web.Response(status=302, headers={"Location": "http://2130706433/x.png"}),
        "/redirect-mapped": lambda: web.Response(status=302, headers={"Location": "http://u:pw@[::ffff:a9fe:a9fe]/"}),
    }

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        server.hits.append(request.path)
        if request.path in fixed:
            return fixed[request.path]()
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/stalled", stalled)
    app.router.add_get("/endless", streamed_forever)
    app.router.add_get("/cut-short", cut_short)
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server(base="")
    runner = web.AppRunner(routes(server), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    server.release.set()
    await runner.cleanup()


class FakeResolver(AbstractResolver):
    """Resolves made-up names to given addresses, as a hostile or internal DNS would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0)
                for address in self.table[host]]

    async def close(self) -> None:
        pass


async def fetch(url: str, settings: ImageSettings = LOOPBACK_ALLOWED, resolver: AbstractResolver | None = None) -> DecodedImage:
    async with ImageFetcher(settings, resolver=resolver) as images:
        return await images.fetch(url)


@pytest.mark.parametrize(("path", "image_format", "size"), [("/ok.png", "PNG", (64, 48)), ("/ok.jpg", "JPEG", (30, 20))])
async def test_an_allowed_server_returns_rgb_pixels_of_the_right_size(server: Server, path: str, image_format: str, size: tuple[int, int]) -> None:
    image = await fetch(server.base + path)
    assert (image.format, image.size) == (image_format, size)
    assert image.pixels.shape == (size[1], size[0], 3)
    assert abs(int(image.pixels[0, 0, 2]) - 220) <= 3


async def test_the_content_type_is_ignored_in_favour_of_the_bytes(server: Server) -> None:
    assert (await fetch(server.base + "/mislabelled")).format == "PNG"


@pytest.mark.parametrize(("path", "status"), [("/missing", "404 Not Found"), ("/gone", "410 Gone"), ("/forbidden", "403 Forbidden")])
async def test_client_errors_are_permanent_and_tell_the_user_to_check_the_url(server: Server, path: str, status: str) -> None:
    with pytest.raises(ImageHttpError, match=f"image URL returned {status}: check image_url") as caught:
        await fetch(server.base + path)
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize(("path", "status"), [("/broken", 500), ("/busy", 503), ("/slow-down", 429)])
async def test_server_errors_and_rate_limits_are_retryable(server: Server, path: str, status: int) -> None:
    with pytest.raises(ImageUnreachable, match=f"answered {status}") as caught:
        await fetch(server.base + path)
    assert isinstance(caught.value, RetryableError) and caught.value.status == status


async def test_a_server_that_never_answers_is_a_retryable_timeout(server: Server) -> None:
    settings = ImageSettings(fetch_allow_hosts=("127.0.0.1",), fetch_timeout=0.3)
    with pytest.raises(ImageUnreachable, match=r"no complete answer within 0\.3 s"):
        await fetch(server.base + "/stalled", settings)


async def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ImageUnreachable, match="Cannot connect"):
        await fetch(f"http://127.0.0.1:{port}/x.png")


async def test_a_connection_cut_short_is_retryable(server: Server) -> None:
    with pytest.raises(ImageUnreachable, match="broke before the whole image arrived"):
        await fetch(server.base + "/cut-short")


async def test_a_web_page_is_not_an_image(server: Server) -> None:
    with pytest.raises(NotAnImage, match="looks like an HTML or XML page, served as text/html"):
        await fetch(server.base + "/page")


async def test_a_truncated_image_is_a_permanent_error(server: Server) -> None:
    with pytest.raises(TruncatedImage, match=r"PNG image .* is truncated or corrupt"):
        await fetch(server.base + "/truncated.png")


async def test_a_decompression_bomb_is_refused_from_its_header(server: Server) -> None:
    with pytest.raises(ImageTooManyPixels, match=r"10000000000 pixels.*decompression bomb"):
        await fetch(server.base + "/bomb.png")


async def test_a_body_over_the_byte_limit_is_refused_from_its_content_length(server: Server) -> None:
    with pytest.raises(ImageTooLarge, match=r"larger than 200000 bytes \(MILLSTREAM_MAX_IMAGE_BYTES\)"):
        await fetch(server.base + "/huge")


async def test_a_streamed_body_is_cut_off_at_the_byte_limit(server: Server) -> None:
    with pytest.raises(ImageTooLarge):
        await fetch(server.base + "/endless")


async def test_a_gzip_bomb_in_the_transfer_encoding_is_cut_off_at_the_byte_limit(server: Server) -> None:
    with pytest.raises(ImageTooLarge):
        await fetch(server.base + "/gzip-bomb")


async def test_loopback_is_refused_by_default_before_connecting_and_the_message_says_how_to_allow_it(server: Server) -> None:
    with pytest.raises(AddressRefused) as caught:
        await fetch(server.base + "/ok.png", ImageSettings())
    assert str(caught.value) == (f"refusing to fetch {server.base}/ok.png: its address is loopback (RFC 1122); "
                                 "allow it with MILLSTREAM_FETCH_ALLOW_HOSTS")
    assert isinstance(caught.value, InvalidPayload) and server.hits == []


@pytest.mark.parametrize(
    ("host", "rule"),
    [("localhost", r"loopback \(RFC (1122|4291)\)"), ("[::ffff:127.0.0.1]", r"loopback \(RFC 1122\) inside IPv4-mapped \(RFC 4291\)"),
     ("127\u30020\u30020\u30021", r"loopback \(RFC 1122\)")],
)
async def test_other_spellings_of_loopback_are_refused_too(server: Server, host: str, rule: str) -> None:
    port = server.base.rsplit(":", 1)[1]
    with pytest.raises(AddressRefused, match=f"its address is {rule}; allow it with"):
        await fetch(f"http://{host}:{port}/ok.png", ImageSettings())
    assert server.hits == []


async def test_a_rare_numeric_spelling_of_loopback_is_an_invalid_url(server: Server) -> None:
    port = server.base.rsplit(":", 1)[1]
    with pytest.raises(InvalidImageUrl) as caught:
        await fetch(f"http://0x7f.0.0.1:{port}/ok.png", ImageSettings(fetch_allow_hosts=("127.0.0.1",)))
    assert str(caught.value) == (
        f"image URL 'http://0x7f.0.0.1:{port}/ok.png' is not valid: its host '0x7f.0.0.1' is a rare IP address "
        "format (RFC 3986 section 7.4); write the address as four decimal numbers (a.b.c.d) or use a name; "
        "check image_url")
    assert server.hits == []


async def test_a_name_that_resolves_to_a_private_address_is_refused_without_naming_the_address() -> None:
    resolver = FakeResolver({"images.example.com": ["10.0.0.5"]})
    with pytest.raises(AddressRefused) as caught:
        await fetch("http://images.example.com/a.png", ImageSettings(), resolver)
    assert str(caught.value) == ("refusing to fetch http://images.example.com/a.png: its address is private-use "
                                 "(RFC 1918); allow it with MILLSTREAM_FETCH_ALLOW_HOSTS")
    assert "10.0.0.5" not in str(caught.value)


async def test_only_the_allowed_addresses_of_a_name_are_connected_to(server: Server) -> None:
    port = int(server.base.rsplit(":", 1)[1])
    resolver = FakeResolver({"mixed.example.com": ["10.0.0.5", "169.254.169.254", "127.0.0.1"]})
    image = await fetch(f"http://mixed.example.com:{port}/ok.png", LOOPBACK_ALLOWED, resolver)
    assert image.size == (64, 48)


async def test_an_allowed_host_name_may_resolve_to_a_private_address(server: Server) -> None:
    port = int(server.base.rsplit(":", 1)[1])
    resolver = FakeResolver({"images.internal": ["127.0.0.1"]})
    settings = ImageSettings(fetch_allow_hosts=("images.internal",))
    assert (await fetch(f"http://images.internal:{port}/ok.png", settings, resolver)).format == "PNG"


async def test_a_redirect_is_followed_and_checked(server: Server) -> None:
    assert (await fetch(server.base + "/redirect-ok")).size == (64, 48)
    assert server.hits == ["/redirect-ok", "/ok.png"]


@pytest.mark.parametrize(
    ("path", "refused"),
    [("/redirect-private", "refusing to fetch http://10.0.0.5/x.png: its address is private-use (RFC 1918); "
                           "allow it with MILLSTREAM_FETCH_ALLOW_HOSTS"),
     ("/redirect-metadata", "refusing to fetch http://169.254.169.254/latest/meta-data/: its address is a cloud "
                            "metadata address; list that exact address in MILLSTREAM_FETCH_ALLOW_HOSTS to allow it")],
)
async def test_a_redirect_to_a_refused_address_is_refused(server: Server, path: str, refused: str) -> None:
    with pytest.raises(AddressRefused) as caught:
        await fetch(server.base + path)
    assert str(caught.value) == refused


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [("/redirect-idna", AddressRefused, "refusing to fetch http://10.0.0.5/x.png: its address is private-use "
                                        "(RFC 1918); allow it with MILLSTREAM_FETCH_ALLOW_HOSTS"),
     ("/redirect-numeric", InvalidImageUrl, "image URL 'http://2130706433/x.png' is not valid: its host "
                                            "'2130706433' is a rare IP address format (RFC 3986 section 7.4); write "
                                            "the address as four decimal numbers (a.b.c.d) or use a name; check "
                                            "image_url"),
     ("/redirect-mapped", AddressRefused, "refusing to fetch http://[::ffff:a9fe:a9fe]/: its address is a cloud "
                                          "metadata address inside IPv4-mapped (RFC 4291); list that exact address "
                                          "in MILLSTREAM_FETCH_ALLOW_HOSTS to allow it")],
)
async def test_a_redirect_to_an_internal_address_in_any_spelling_is_refused(
    server: Server, path: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        await fetch(server.base + path)
    assert str(caught.value) == message
    assert server.hits == [path]


async def test_a_redirect_to_a_file_url_is_refused(server: Server) -> None:
    with pytest.raises(UnsupportedScheme, match="'file'"):
        await fetch(server.base + "/redirect-file", ImageSettings(fetch_allow_hosts=("127.0.0.1",), file_roots=("/etc",)))


async def test_redirects_beyond_the_limit_are_refused(server: Server) -> None:
    with pytest.raises(TooManyRedirects, match=r"more than 3 times \(MILLSTREAM_MAX_REDIRECTS\)"):
        await fetch(server.base + "/redirect-loop")
    assert len(server.hits) == 4


async def test_a_redirect_without_a_location_is_a_permanent_http_error(server: Server) -> None:
    with pytest.raises(ImageHttpError, match="302 Found without a Location header"):
        await fetch(server.base + "/redirect-nowhere")


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "gopher://example.com/", "data:image/png;base64,iVBORw0K", "javascript:alert(1)"])
async def test_unsupported_schemes_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedScheme, match="only http://, https:// and file:// are supported"):
        await fetch(url)


@pytest.mark.parametrize("url", ["", "   ", "example.com/a.png", "http:///a.png", "http://2130706433/a.png"])
async def test_malformed_urls_are_invalid_payloads(url: str) -> None:
    with pytest.raises(InvalidImageUrl, match=r"check image_url|no scheme"):
        await fetch(url)


async def test_credentials_in_the_url_do_not_reach_the_error_message(server: Server) -> None:
    url = server.base.replace("http://", "http://user:s3cret@") + "/missing"
    with pytest.raises(ImageHttpError) as caught:
        await fetch(url)
    assert "s3cret" not in str(caught.value) and "s3cret" not in caught.value.url
