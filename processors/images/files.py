"""Read a file:// image, only from under the configured roots.

The path is resolved first (symlinks and ``..`` followed, as the kernel would)
and must then lie under a resolved root; only after that does the reader learn
whether the file exists, so a refused URL reveals nothing about files outside
the roots. Between that check and the open a directory could be swapped for a
symlink, so the open refuses a symlink as last component (``O_NOFOLLOW``) and
the opened descriptor's real path is checked again. A hard link has no "real
path" to check (every link is the file), so a regular file with more than one
link is refused: a link under a root may name a file from anywhere on the
same file system. ``O_NONBLOCK`` keeps a FIFO
under a root from blocking the open; anything but a regular file is refused.
Blocking: callers run ``read_file`` in a thread.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from processors.images.errors import (
    FileHardLinked,
    FileOutsideRoots,
    FileUrlsDisabled,
    ImageFileMissing,
    ImageTooLarge,
    ImageUnreachable,
    InvalidImageUrl,
)

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MISSING = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def local_path(url: str) -> Path:
    """The absolute path a file:// URL names; only local files (``file:///p`` or ``file://localhost/p``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        problem = f"file:// URLs must name a local path (file:///path), not host {parts.netloc!r}"
        raise InvalidImageUrl(url, problem)
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise InvalidImageUrl(url, "file:// URLs need an absolute path (file:///path/to/image.png)")
    return Path(path)


def inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def read_file(url: str, roots: tuple[str, ...], max_bytes: int) -> bytes:
    """The bytes of the file ``url`` names; raises the errors of ``processors.images.errors``."""
    path = local_path(url)
    if not roots:
        raise FileUrlsDisabled(url)
    resolved_roots = [Path(root).resolve() for root in roots]
    try:
        target = path.resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a symlink loop
        raise ImageFileMissing(url, "its path cannot be resolved (a symlink loop?)") from None
    if not inside(target, resolved_roots):
        raise FileOutsideRoots(url)
    fd = _open(target, url)
    try:
        _check_opened(fd, resolved_roots, url, max_bytes)
        return _read_at_most(fd, max_bytes, url)
    finally:
        os.close(fd)


def _open(target: Path, url: str) -> int:
    try:
        return os.open(target, _FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink appeared after the path was resolved
            raise FileOutsideRoots(url) from None
        if error.errno in _MISSING:
            raise ImageFileMissing(url) from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise ImageFileMissing(url, "millstream may not read it (permission denied)") from None
        raise ImageUnreachable(url, f"reading it failed: {error.strerror}") from None


def _check_opened(fd: int, roots: list[Path], url: str, max_bytes: int) -> None:
    proc = Path(f"/proc/self/fd/{fd}")
    if proc.exists() and not inside(Path(os.readlink(proc)), roots):
        raise FileOutsideRoots(url)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ImageFileMissing(url, "it is not a regular file")
    if info.st_nlink > 1:
        raise FileHardLinked(url, info.st_nlink)
    if info.st_size > max_bytes:
        raise ImageTooLarge(url, max_bytes)


def _read_at_most(fd: int, max_bytes: int, url: str) -> bytes:
    # The file may grow after fstat: read one byte past the limit to notice.
    chunks, size = [], 0
    while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLarge(url, max_bytes)
    return b"".join(chunks)
