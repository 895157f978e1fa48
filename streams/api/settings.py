"""The ``api`` settings section (``MILLSTREAM_API_*``); standard library and ``streams`` only.

Every command loads the registered sections to know every variable, so this
module must import without FastAPI.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from streams.errors import ConfigError
from streams.settings import variable

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the API listens, who may call it, and the bounds of what it accepts."""

    api_host: str = LOOPBACK
    api_port: int = 8700
    api_read_tokens: tuple[str, ...] = field(default=(), repr=False)
    api_admin_tokens: tuple[str, ...] = field(default=(), repr=False)
    api_cors_origins: tuple[str, ...] = ()
    api_max_body_bytes: int = 8 * 1024 * 1024
    api_max_batch: int = 1000
    api_sse_heartbeat: float = 15.0
    api_sse_queue: int = 10_000  # recent events kept for clients that fall behind
    api_stats_interval: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.api_port <= 65535:
            raise ConfigError(variable("api_port"), "must be a port number (0: any free port)")
        for name in ("api_max_body_bytes", "api_max_batch", "api_sse_queue"):
            if getattr(self, name) < 1:
                raise ConfigError(variable(name), "must be >= 1")
        for name in ("api_sse_heartbeat", "api_stats_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError(variable(name), "must be > 0")
        for name in ("api_read_tokens", "api_admin_tokens"):
            if any(len(token) < 16 for token in getattr(self, name)):
                raise ConfigError(variable(name), "every token must have at least 16 characters")

    @property
    def open(self) -> bool:
        """No token configured: every caller is allowed, so only this machine may call."""
        return not (self.api_read_tokens or self.api_admin_tokens)

    @property
    def bind_host(self) -> str:
        return LOOPBACK if self.open else self.api_host

    def scope_of(self, token: str) -> str | None:
        """"admin", "read" or None for ``token``; every configured token is compared, in constant time."""
        given = token.encode()
        admin = any([hmac.compare_digest(given, t.encode()) for t in self.api_admin_tokens])
        read = any([hmac.compare_digest(given, t.encode()) for t in self.api_read_tokens])
        return "admin" if admin else "read" if read else None
