"""Size limits that bound each stage's memory, and the errors that name them.

```
BadImage (processors.images.errors)
  ImageTooWide             wider than MILLSTREAM_MAX_IMAGE_WIDTH
  ImageTooTall             taller than MILLSTREAM_MAX_IMAGE_HEIGHT
  ImageAspectTooExtreme    long side / short side over MILLSTREAM_MAX_IMAGE_ASPECT
  InferenceInputTooLarge   its tiles for Triton over MILLSTREAM_MAX_INFERENCE_BYTES
```
``check_size`` runs on the size an image's header claims, before a pixel is
decoded, and again on the upright size after decoding (EXIF orientation can
swap width and height). The pixel limit keeps its own error,
``ImageTooManyPixels``. Pure: no I/O, no numpy.
"""

from __future__ import annotations

from processors.images.errors import BadImage, ImageTooManyPixels, display_url
from processors.images.settings import SizeLimits

__all__ = ["ImageAspectTooExtreme", "ImageTooTall", "ImageTooWide", "InferenceInputTooLarge", "check_size"]

_MIB = 1024 * 1024


def _shape(width: int, height: int) -> str:
    return f"{width} x {height} pixels (width x height)"


class ImageTooWide(BadImage):
    def __init__(self, url: str, limit: int, width: int, height: int) -> None:
        self.limit, self.size = limit, (width, height)
        super().__init__(url, f"image {display_url(url)} is {_shape(width, height)}, wider than the limit "
                              f"of {limit} (MILLSTREAM_MAX_IMAGE_WIDTH); send a narrower image or raise it")


class ImageTooTall(BadImage):
    def __init__(self, url: str, limit: int, width: int, height: int) -> None:
        self.limit, self.size = limit, (width, height)
        super().__init__(url, f"image {display_url(url)} is {_shape(width, height)}, taller than the limit "
                              f"of {limit} (MILLSTREAM_MAX_IMAGE_HEIGHT); split the image or raise the limit")


class ImageAspectTooExtreme(BadImage):
    def __init__(self, url: str, limit: float, width: int, height: int) -> None:
        self.limit, self.size = limit, (width, height)
        self.aspect = max(width, height) / min(width, height)
        super().__init__(url, f"image {display_url(url)} is {_shape(width, height)}: its long side is "
                              f"{self.aspect:.0f} times its short side, over the limit of {limit:g} "
                              "(MILLSTREAM_MAX_IMAGE_ASPECT); such a strip holds no text to translate")


class InferenceInputTooLarge(BadImage):
    """The tiles an image needs would not fit the inference memory budget."""

    def __init__(self, limit: int, needed: int, tiles: int, model: str, width: int, height: int) -> None:
        self.limit, self.needed, self.tiles, self.size = limit, needed, tiles, (width, height)
        super().__init__("", f"an image of {_shape(width, height)} needs {tiles} tiles for {model} "
                             f"({needed / _MIB:.1f} MiB), over the limit of {limit} bytes "
                             "(MILLSTREAM_MAX_INFERENCE_BYTES); send a smaller image or raise the limit")


def check_size(url: str, width: int, height: int, limits: SizeLimits) -> None:
    """Raise the BadImage naming the first limit ``width`` x ``height`` (both >= 1) is over."""
    if width * height > limits.max_pixels:
        raise ImageTooManyPixels(url, limits.max_pixels, width * height, (width, height))
    if width > limits.max_width:
        raise ImageTooWide(url, limits.max_width, width, height)
    if height > limits.max_height:
        raise ImageTooTall(url, limits.max_height, width, height)
    if max(width, height) > limits.max_aspect * min(width, height):
        raise ImageAspectTooExtreme(url, limits.max_aspect, width, height)
