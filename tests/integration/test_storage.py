"""LocalStore on a real directory: PNG files written atomically, URLs under /images/."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from processors.storage import LocalStore, image_name


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


async def test_put_writes_a_png_and_returns_its_public_url(store: LocalStore) -> None:
    url = await store.put("req-1", "img-1", pixels())
    name = image_name("req-1", "img-1")
    assert url == f"http://results.example.com/images/{name}"
    assert np.array_equal(read_png(store.path_for(name)), pixels())


async def test_png_bytes_are_stored_as_they_are(store: LocalStore) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (9, 8, 7)).save(buffer, format="PNG")
    url = await store.put("r", "i", buffer.getvalue())
    assert store.path_for(url.rsplit("/", 1)[1]).read_bytes() == buffer.getvalue()


async def test_storing_the_same_ids_again_replaces_the_file_and_leaves_no_temporary_files(store: LocalStore) -> None:
    first = await store.put("r", "i", pixels(value=0))
    second = await store.put("r", "i", pixels(value=200))
    assert first == second
    assert listing(store.directory) == [image_name("r", "i")]
    assert read_png(store.path_for(image_name("r", "i")))[1, 1].tolist() == [200, 200, 200]


async def test_concurrent_puts_of_the_same_ids_leave_one_whole_image(store: LocalStore) -> None:
    await asyncio.gather(*(store.put("r", "i", pixels(400, 300, value=v)) for v in (1, 2, 3, 4)))
    assert listing(store.directory) == [image_name("r", "i")]
    assert read_png(store.path_for(image_name("r", "i"))).shape == (400, 300, 3)


async def test_hostile_ids_cannot_write_outside_the_directory(store: LocalStore, tmp_path: Path) -> None:
    await store.put("../../../escape", "/etc/passwd", pixels())
    assert files_under(tmp_path) == [image_name("../../../escape", "/etc/passwd")]


async def test_files_are_readable_by_a_server_running_as_another_user(store: LocalStore) -> None:
    await store.put("r", "i", pixels())
    assert stat.S_IMODE(os.stat(store.path_for(image_name("r", "i"))).st_mode) == 0o644


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
