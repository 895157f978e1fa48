"""Result image names: content addresses, safe in a path and a URL; path_for refuses the rest."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.images.storage import LocalStore, UnsafeName, image_name

STORE = LocalStore("/srv/results", "http://127.0.0.1:8080/")
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"


@given(st.binary(max_size=512))
def test_every_name_is_32_hex_digits_of_the_sha256_of_the_bytes_inside_the_store(png: bytes) -> None:
    name = image_name(png)
    assert re.fullmatch(r"[0-9a-f]{32}\.png", name)
    assert name == hashlib.sha256(png).hexdigest()[:32] + ".png"
    assert STORE.path_for(name).parent == STORE.directory


def test_the_same_bytes_give_the_same_name_so_a_task_handled_twice_leaves_one_file() -> None:
    assert image_name(PNG) == image_name(bytes(PNG))


def test_different_bytes_give_different_names() -> None:
    assert image_name(PNG) != image_name(PNG + b"\x00")


@pytest.mark.parametrize(
    "name",
    ["../secret.png", "a/b.png", "a\\b.png", "..", ".png", ".hidden.png", "x.png/..", "x.jpg", "x", "",
     "x.png\x00", "/etc/passwd", "%2e%2e%2fx.png", "x.png\n", "a" * 201 + ".png",
     # names of the old scheme (readable ids plus a hash of the ids): no longer served
     "req-42-img_7-0123456789abcdef.png", "r1-i1-" + "0" * 16 + ".png",
     # near misses of a content address
     "0" * 31 + ".png", "0" * 33 + ".png", "A" * 32 + ".png", "g" * 32 + ".png", "0" * 32 + ".PNG",
     "0" * 32 + ".png\n", " " + "0" * 32 + ".png", "0" * 32],
)
def test_path_for_refuses_names_the_store_never_makes(name: str) -> None:
    with pytest.raises(UnsafeName, match="not an image name of this store"):
        STORE.path_for(name)


def test_urls_are_the_public_base_plus_images_and_the_name() -> None:
    name = image_name(PNG)
    assert STORE.url_for(name) == f"http://127.0.0.1:8080/images/{name}"


def test_a_store_without_an_http_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        LocalStore("/srv/results", "")
