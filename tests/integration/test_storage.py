"""LocalStore on a real directory: PNG files named by content, written atomically, URLs under /images/."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from prometheus_client import CollectorRegistry

from processors.images.storage import LocalStore, image_name
from processors.local.web import application


def pixels(height: int = 6, width: int = 5, value: int = 0) -> npt.NDArray[np.uint8]:
    array = np.full((height, width, 3), value, dtype=np.uint8)
    array[0, 0] = (10, 20, 30)
    return array


def read_png(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def files_under(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "var" / "images", "http://results.example.com/")


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_put_writes_a_png_and_returns_its_public_url(store: LocalStore) -> None:
    url = await store.put("req-1", "img-1", pixels())
    name = name_of(url)
    assert url == f"http://results.example.com/images/{name}"
    assert name == image_name(store.path_for(name).read_bytes())
    assert np.array_equal(read_png(store.path_for(name)), pixels())


async def test_png_bytes_are_stored_as_they_are(store: LocalStore) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (9, 8, 7)).save(buffer, format="PNG")
    url = await store.put("r", "i", buffer.getvalue())
    assert store.path_for(name_of(url)).read_bytes() == buffer.getvalue()
    assert name_of(url) == image_name(buffer.getvalue())


async def test_a_later_task_with_the_same_ids_and_another_image_does_not_overwrite_the_first(
    store: LocalStore,
) -> None:
    first = await store.put("r", "i", pixels(value=0))
    second = await store.put("r", "i", pixels(value=200))
    assert first != second
    assert listing(store.directory) == sorted([name_of(first), name_of(second)])
    assert read_png(store.path_for(name_of(first)))[1, 1].tolist() == [0, 0, 0]
    assert read_png(store.path_for(name_of(second)))[1, 1].tolist() == [200, 200, 200]


async def test_a_name_cannot_be_derived_from_the_ids(store: LocalStore) -> None:
    url = await store.put("req-42", "img-7", pixels())
    name = name_of(url)
    assert "req" not in name and "42" not in name and "img" not in name
    derived = {hashlib.sha256(text.encode()).hexdigest()[:32] + ".png"
               for text in ("req-42", "img-7", "req-42img-7", "req-42-img-7", '["req-42", "img-7"]')}
    assert name not in derived
    assert name == image_name(store.path_for(name).read_bytes())


async def test_the_same_task_handled_twice_leaves_its_bytes_once_under_one_name(store: LocalStore) -> None:
    first = await store.put("r", "i", pixels(value=5))
    again = await store.put("r", "i", pixels(value=5))
    assert first == again
    assert listing(store.directory) == [name_of(first)]


async def test_concurrent_puts_leave_whole_images_and_no_temporary_files(store: LocalStore) -> None:
    urls = await asyncio.gather(*(store.put("r", "i", pixels(400, 300, value=v)) for v in (1, 2, 3, 4, 4)))
    assert listing(store.directory) == sorted({name_of(u) for u in urls})
    assert len(set(urls)) == 4
    assert all(read_png(store.path_for(name_of(u))).shape == (400, 300, 3) for u in urls)


async def test_hostile_ids_cannot_write_outside_the_directory(store: LocalStore, tmp_path: Path) -> None:
    url = await store.put("../../../escape", "/etc/passwd", pixels())
    assert files_under(tmp_path) == [name_of(url)]


async def test_files_are_readable_by_a_server_running_as_another_user(store: LocalStore) -> None:
    url = await store.put("r", "i", pixels())
    assert stat.S_IMODE(os.stat(store.path_for(name_of(url))).st_mode) == 0o644


async def test_a_failed_write_leaves_neither_a_partial_image_nor_a_temporary_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(source: str, destination: str) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        await store.put("r", "i", pixels())
    assert listing(store.directory) == []


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), b"GIF89a..."],
)
async def test_anything_but_rgb_pixels_or_png_bytes_is_a_programming_error(store: LocalStore, image: object) -> None:
    with pytest.raises(ValueError, match=r"RGB pixels|not PNG"):
        await store.put("r", "i", image)  # type: ignore[arg-type]


async def test_the_web_handler_serves_stored_names_immutably_and_refuses_every_other_name(
    store: LocalStore,
) -> None:
    name = name_of(await store.put("req-42", "img-7", pixels()))
    async with TestClient(TestServer(application(store, CollectorRegistry(), {}), host="127.0.0.1")) as client:
        served = await client.get(f"/images/{name}")
        assert served.status == 200 and await served.read() == store.path_for(name).read_bytes()
        assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        for other in ("req-42-img-7-0123456789abcdef.png", "0" * 32 + ".png", "..%2f..%2fetc%2fpasswd",
                      name.upper(), name[:-4]):
            assert (await client.get(f"/images/{other}")).status == 404
