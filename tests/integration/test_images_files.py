"""file:// image URLs: read only under MILLSTREAM_FILE_ROOTS, after symlinks and '..' are resolved."""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from processors.images.errors import (
    FileHardLinked,
    FileOutsideRoots,
    FileUrlsDisabled,
    ImageFileMissing,
    ImageTooLarge,
    InvalidImageUrl,
)
from processors.images.fetch import DecodedImage, ImageFetcher, ImageSettings
from streams.errors import InvalidPayload, PermanentError


def write_png(path: Path, size: tuple[int, int] = (12, 9)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def url_of(path: Path | str) -> str:
    return "file://" + quote(str(path))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    return tmp_path / "images"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    return write_png(tmp_path / "private" / "secret.png")


async def fetch(url: str, *roots: Path, max_bytes: int = 1_000_000) -> DecodedImage:
    settings = ImageSettings(file_roots=tuple(str(r) for r in roots), max_image_bytes=max_bytes)
    async with ImageFetcher(settings) as images:
        return await images.fetch(url)


async def test_a_file_inside_a_root_is_read(root: Path) -> None:
    image = await fetch(url_of(write_png(root / "shop" / "a.png")), root)
    assert (image.format, image.size) == ("PNG", (12, 9))
    assert image.pixels[0, 0].tolist() == [1, 2, 3]


async def test_localhost_and_percent_encoded_names_are_accepted(root: Path) -> None:
    path = write_png(root / "with space & 글.png")
    assert (await fetch("file://localhost" + quote(str(path)), root)).size == (12, 9)


async def test_any_of_several_roots_will_do(tmp_path: Path, root: Path) -> None:
    other = tmp_path / "other"
    assert (await fetch(url_of(write_png(other / "b.png")), root, other)).size == (12, 9)


async def test_file_urls_are_refused_when_no_roots_are_configured(root: Path) -> None:
    with pytest.raises(FileUrlsDisabled, match=r"file:// image URLs are off.*MILLSTREAM_FILE_ROOTS"):
        await fetch(url_of(write_png(root / "a.png")))


async def test_a_file_outside_the_roots_is_refused(root: Path, secret: Path) -> None:
    with pytest.raises(FileOutsideRoots, match="outside the directories in MILLSTREAM_FILE_ROOTS") as caught:
        await fetch(url_of(secret), root)
    assert isinstance(caught.value, InvalidPayload)


async def test_dot_dot_cannot_climb_out_of_a_root(root: Path, secret: Path) -> None:
    with pytest.raises(FileOutsideRoots):
        await fetch(f"file://{root}/../private/secret.png", root)
    with pytest.raises(FileOutsideRoots):
        await fetch(f"file://{root}/%2e%2e/private/secret.png", root)


async def test_a_symlink_inside_a_root_cannot_point_outside_it(root: Path, secret: Path) -> None:
    (root / "innocent.png").symlink_to(secret)
    (root / "dir").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(FileOutsideRoots):
        await fetch(url_of(root / "innocent.png"), root)
    with pytest.raises(FileOutsideRoots):
        await fetch(url_of(root / "dir" / "secret.png"), root)


async def test_a_symlink_that_stays_inside_the_root_is_followed(root: Path) -> None:
    target = write_png(root / "real" / "a.png")
    (root / "alias.png").symlink_to(target)
    assert (await fetch(url_of(root / "alias.png"), root)).size == (12, 9)


async def test_a_root_given_through_a_symlink_still_works(tmp_path: Path, root: Path) -> None:
    write_png(root / "a.png")
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    assert (await fetch(url_of(tmp_path / "link" / "a.png"), tmp_path / "link")).size == (12, 9)


async def test_a_sibling_directory_sharing_the_roots_prefix_is_outside(tmp_path: Path, root: Path) -> None:
    sibling = write_png(tmp_path / "images-private" / "a.png")
    with pytest.raises(FileOutsideRoots):
        await fetch(url_of(sibling), root)


async def test_refusal_outside_the_roots_does_not_reveal_whether_a_file_exists(root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileOutsideRoots):
        await fetch(url_of(tmp_path / "does-not-exist.png"), root)


async def test_a_missing_file_inside_a_root_is_a_permanent_error(root: Path) -> None:
    with pytest.raises(ImageFileMissing, match="no such file; check image_url") as caught:
        await fetch(url_of(root / "nope.png"), root)
    assert isinstance(caught.value, PermanentError)


async def test_directories_and_fifos_are_not_read(root: Path) -> None:
    os.mkdir(root / "dir")
    os.mkfifo(root / "pipe")  # opening a FIFO for reading would block without O_NONBLOCK
    for name in ("dir", "pipe"):
        with pytest.raises(ImageFileMissing, match="not a regular file"):
            await fetch(url_of(root / name), root)


async def test_a_file_over_the_byte_limit_is_refused(root: Path) -> None:
    path = write_png(root / "big.png", (300, 300))
    with pytest.raises(ImageTooLarge, match="MILLSTREAM_MAX_IMAGE_BYTES"):
        await fetch(url_of(path), root, max_bytes=100)


@pytest.mark.parametrize("url", ["file://fileserver/share/a.png", "file:relative/a.png", "file:///a%00.png"])
async def test_file_urls_naming_a_remote_host_or_no_absolute_path_are_invalid(url: str, root: Path) -> None:
    with pytest.raises(InvalidImageUrl):
        await fetch(url, root)


async def test_a_hard_link_under_a_root_to_a_file_outside_is_refused_naming_the_rule(root: Path, secret: Path) -> None:
    link = root / "innocent.png"
    os.link(secret, link)
    with pytest.raises(FileHardLinked) as caught:
        await fetch(url_of(link), root)
    assert str(caught.value) == (
        f"refusing to read {url_of(link)}: the file has 2 hard links, and a hard link under "
        "MILLSTREAM_FILE_ROOTS can name a file outside them; copy the image instead of linking it"
    )
    assert isinstance(caught.value, InvalidPayload)


async def test_a_hard_link_between_two_files_inside_the_root_is_refused_too(root: Path) -> None:
    original = write_png(root / "a.png")
    os.link(original, root / "b.png")
    with pytest.raises(FileHardLinked, match="the file has 2 hard links"):
        await fetch(url_of(original), root)
