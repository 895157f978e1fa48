"""The ``spool`` settings section (``MILLSTREAM_SPOOL_*``); standard library and ``streams`` only.

Registered as a section (pyproject ``millstream.settings``: ``spool``), so every
command knows these variables and a typo among them fails at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.errors import ConfigError
from streams.settings import variable

SYNCHRONOUS = ("full", "normal")


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    """Where a producer spools while Redis is unreachable, how much it may hold, how it drains.

    ``spool_path`` empty: no spool (a publish to an unreachable Redis raises, as before).
    """

    spool_path: str = ""
    spool_max_rows: int = 1_000_000
    spool_max_bytes: int = 256 * 1024 * 1024  # payloads, request ids and stream names held
    spool_synchronous: str = "full"  # docs/decisions/0044: fsync at every commit
    spool_drain_batch: int = 500
    spool_attempt_timeout: float = 5.0  # a direct publish that takes longer is spooled
    spool_retry_max: float = 2.0  # the longest wait between two drain tries while Redis is down

    def __post_init__(self) -> None:
        for name in ("spool_max_rows", "spool_max_bytes", "spool_drain_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(variable(name), "must be >= 1 (the spool is always bounded)")
        for name in ("spool_attempt_timeout", "spool_retry_max"):
            if not getattr(self, name) > 0:
                raise ConfigError(variable(name), "must be > 0")
        if self.spool_synchronous.lower() not in SYNCHRONOUS:
            raise ConfigError(variable("spool_synchronous"), f"{self.spool_synchronous!r}: "
                              "expected full (fsync at every commit) or normal (see docs/spool.md)")
        object.__setattr__(self, "spool_synchronous", self.spool_synchronous.lower())

    @property
    def enabled(self) -> bool:
        return bool(self.spool_path.strip())
