"""ImageSettings: MILLSTREAM_* variables, defaults that run on one machine, validation naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from processors.images.fetch import ImageSettings
from processors.images.settings import ImageSettings as StandaloneImageSettings
from streams.errors import ConfigError
from streams.settings import check_unknown, load, registered_sections


def test_defaults_match_the_documented_values() -> None:
    settings = ImageSettings()
    assert settings.file_roots == () and settings.fetch_allow_hosts == ()
    assert (settings.fetch_timeout, settings.max_image_bytes, settings.max_image_pixels) == (20.0, 20 * 1024 * 1024, 40_000_000)
    assert (settings.max_redirects, settings.store_dir, settings.public_url) == (3, "var/images", "")
    assert (settings.max_image_width, settings.max_image_height, settings.max_image_aspect) == (10_000, 30_000, 2000.0)
    assert settings.max_inference_bytes == 128 * 1024 * 1024


def test_processors_images_re_exports_the_one_settings_class() -> None:
    assert ImageSettings is StandaloneImageSettings


def test_the_section_loads_without_the_image_extras_installed() -> None:
    # A fresh interpreter in which aiohttp, numpy, Pillow, yarl and opencv cannot be imported,
    # as after `pip install millstream` without extras.
    script = (
        "import sys\n"
        "for name in ('aiohttp', 'numpy', 'PIL', 'yarl', 'cv2', 'rapidocr_onnxruntime', 'tritonclient'):\n"
        "    sys.modules[name] = None\n"
        "from processors.images.settings import ImageSettings\n"
        "from streams.settings import load\n"
        "print(load(ImageSettings, {'MILLSTREAM_MAX_IMAGE_WIDTH': '800'}).max_image_width)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "800"), done.stderr


def test_lists_are_read_comma_separated_from_the_environment() -> None:
    settings = load(ImageSettings, {
        "MILLSTREAM_FILE_ROOTS": "/srv/images, /data/in",
        "MILLSTREAM_FETCH_ALLOW_HOSTS": "127.0.0.1,10.0.0.0/8, cdn.internal",
        "MILLSTREAM_FETCH_TIMEOUT": "5",
        "MILLSTREAM_MAX_REDIRECTS": "0",
    })
    assert settings.file_roots == ("/srv/images", "/data/in")
    assert settings.fetch_allow_hosts == ("127.0.0.1", "10.0.0.0/8", "cdn.internal")
    assert (settings.fetch_timeout, settings.max_redirects) == (5.0, 0)


def test_the_section_is_registered_so_its_variables_are_known_to_every_command() -> None:
    assert ImageSettings in registered_sections()
    check_unknown({"MILLSTREAM_FETCH_ALLOW_HOSTS": "x"}, registered_sections())


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MILLSTREAM_FILE_ROOTS", "images", "not an absolute path"),
        ("MILLSTREAM_FILE_ROOTS", "/", "would open every file"),
        ("MILLSTREAM_FETCH_ALLOW_HOSTS", "http://cdn.example.com", "neither a host name"),
        ("MILLSTREAM_FETCH_TIMEOUT", "0", "> 0"),
        ("MILLSTREAM_FETCH_TIMEOUT", "inf", "> 0"),
        ("MILLSTREAM_MAX_IMAGE_BYTES", "0", ">= 1"),
        ("MILLSTREAM_MAX_IMAGE_PIXELS", "-1", ">= 1"),
        ("MILLSTREAM_MAX_IMAGE_WIDTH", "0", ">= 1"),
        ("MILLSTREAM_MAX_IMAGE_HEIGHT", "0", ">= 1"),
        ("MILLSTREAM_MAX_IMAGE_ASPECT", "0.5", "a ratio >= 1"),
        ("MILLSTREAM_MAX_IMAGE_ASPECT", "nan", "a ratio >= 1"),
        ("MILLSTREAM_MAX_INFERENCE_BYTES", "0", ">= 1"),
        ("MILLSTREAM_MAX_REDIRECTS", "-1", "between 0 and 20"),
        ("MILLSTREAM_MAX_REDIRECTS", "99", "between 0 and 20"),
        ("MILLSTREAM_STORE_DIR", "", "must name a directory"),
        ("MILLSTREAM_PUBLIC_URL", "ftp://x", "must start with http"),
    ],
)
def test_an_invalid_value_stops_start_up_naming_the_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        load(ImageSettings, {variable: value})
    assert caught.value.variable == variable
