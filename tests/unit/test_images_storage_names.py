"""Result image names: safe in a path and a URL, stable per id pair, and path_for refuses the rest."""

from __future__ import annotations

import pytest

from processors.storage import LocalStore, UnsafeName, image_name

STORE = LocalStore("/srv/results", "http://127.0.0.1:8080/")


@pytest.mark.parametrize(
    ("request_id", "image_id"),
    [("r1", "i1"), ("../../etc", "passwd"), ("a/b", "c\\d"), ("x\x00y", "..."), ("", ""), ("요청", "画像"),
     ("r" * 500, "i" * 500), ("a b?c#d%2F", "<script>")],
)
def test_names_from_any_ids_are_plain_png_file_names_inside_the_store(request_id: str, image_id: str) -> None:
    name = image_name(request_id, image_id)
    assert name.endswith(".png") and len(name) <= 160
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert STORE.path_for(name).parent == STORE.directory


def test_the_same_ids_give_the_same_name_so_a_retried_task_overwrites_its_own_file() -> None:
    assert image_name("r1", "i1") == image_name("r1", "i1")


@pytest.mark.parametrize(("one", "other"), [(("a/b", "c"), ("a_b", "c")), (("a", "b-c"), ("a-b", "c")), (("r", "i"), ("i", "r"))])
def test_ids_that_look_alike_after_cleaning_still_get_different_names(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert image_name(*one) != image_name(*other)


def test_names_stay_readable_for_people_looking_at_the_directory() -> None:
    assert image_name("req-42", "img_7").startswith("req-42-img_7-")


@pytest.mark.parametrize(
    "name",
    ["../secret.png", "a/b.png", "a\\b.png", "..", ".png", ".hidden.png", "x.png/..", "x.jpg", "x", "",
     "x.png\x00", "/etc/passwd", "%2e%2e%2fx.png", "x.png\n", "a" * 201 + ".png"],
)
def test_path_for_refuses_names_the_store_never_makes(name: str) -> None:
    with pytest.raises(UnsafeName):
        STORE.path_for(name)


def test_urls_are_the_public_base_plus_images_and_the_name() -> None:
    name = image_name("r1", "i1")
    assert STORE.url_for(name) == f"http://127.0.0.1:8080/images/{name}"


def test_a_store_without_an_http_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        LocalStore("/srv/results", "")
