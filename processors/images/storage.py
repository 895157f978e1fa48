"""Result images in a local directory, served by `millstream up` under ``/images/<name>``.

A name is the content's address: the first 32 hex digits (128 bits) of the
SHA-256 of the PNG bytes, plus ``.png`` (docs/decisions/0015-content-addressed-result-names.md).
So a later task, whatever ids it carries, cannot overwrite an earlier result
(different bytes, different name), and nobody can compute a name from the ids;
to find a result one needs its URL or its exact bytes. A task handled twice
(a crash between storing and acknowledging) that renders the same bytes
leaves them under the same name, once.
Writes go to a temporary file in the same directory, are flushed to disk and
renamed over the final name, so a reader sees the old file or the new one,
never half of one (both hold the same bytes: the name is their hash).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NAME = re.compile(r"[0-9a-f]{32}\.png")
NAME_HEX_DIGITS = 32
_MODE = 0o644  # served by an HTTP server that may run as another user


class UnsafeName(ValueError):
    """A name asked of the store that it could not have made (separators, ``..``, ...)."""


def image_name(png: bytes) -> str:
    """The file name of result image ``png``: its content address, safe in a path and a URL."""
    return f"{hashlib.sha256(png).hexdigest()[:NAME_HEX_DIGITS]}.png"


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of an RGB ``(height, width, 3)`` uint8 array."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected RGB pixels (height, width, 3) uint8, got {pixels.shape} {pixels.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


class LocalStore:
    """Store PNG result images in ``directory``; their URLs start with ``public_base_url``."""

    def __init__(self, directory: str | os.PathLike[str], public_base_url: str) -> None:
        if urlsplit(public_base_url).scheme not in ("http", "https"):
            raise ValueError(f"public_base_url {public_base_url!r} must start with http:// or https://")
        self._directory = Path(directory).absolute()
        self._base = public_base_url.rstrip("/")

    @property
    def directory(self) -> Path:
        return self._directory

    async def put(self, request_id: str, image_id: str, image: npt.NDArray[np.uint8] | bytes) -> str:
        """Store ``image`` (RGB pixels or PNG bytes) of the task with these ids; return its public URL.

        The ids do not enter the name (see the module docstring): two tasks with
        the same ids and different images get two files.
        """
        if isinstance(image, bytes):
            if not image.startswith(PNG_SIGNATURE):
                raise ValueError("LocalStore.put takes RGB pixels or PNG bytes; these bytes are not PNG")
            png = image
        else:
            png = await asyncio.to_thread(encode_png, image)
        name = image_name(png)
        await asyncio.to_thread(self._write, name, png)
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return f"{self._base}/images/{self.path_for(name).name}"

    def path_for(self, name: str) -> Path:
        """Where the image ``name`` lives (it may not exist); UnsafeName for a name the store never makes."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UnsafeName(f"not an image name of this store: {name!r}")
        return self._directory / name

    def _write(self, name: str, png: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self._directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(png)
                file.flush()
                os.fchmod(file.fileno(), _MODE)
                os.fsync(file.fileno())
            os.replace(temporary, self.path_for(name))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(self._directory)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
