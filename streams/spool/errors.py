"""The spool's errors, under ``StreamsError``::

    StreamsError
      SpoolError       the spool file cannot be opened, read or written (path, cause)
        SpoolFull      the tasks were refused: the spool holds its limit (nothing was spooled)
"""

from __future__ import annotations

from streams.errors import StreamsError


class SpoolError(StreamsError):
    """The spool at ``path`` could not be used; the message says why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"producer spool {path}: {problem}")
        self.path, self.problem = path, problem


class SpoolFull(SpoolError):
    """Redis is unreachable and the spool holds its limit: these tasks were neither published nor spooled."""

    def __init__(self, path: str, rows: int, size: int, max_rows: int, max_bytes: int, adding: int) -> None:
        super().__init__(path, (
            f"full: holds {rows} tasks ({size} bytes) of at most {max_rows} tasks / {max_bytes} bytes "
            f"and {adding} bytes more were refused (MILLSTREAM_SPOOL_MAX_ROWS, MILLSTREAM_SPOOL_MAX_BYTES); "
            "retry once Redis is back"))
        self.rows, self.size, self.adding = rows, size, adding
        self.max_rows, self.max_bytes = max_rows, max_bytes
