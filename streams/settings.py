"""Settings: frozen dataclasses built from ``MILLSTREAM_*`` variables, read here only.

The environment is read by ``from_env``, ``section`` and ``secrets`` only (each
takes an ``environ``, by default ``os.environ``); so are the defaults that come
from it (``operator``: SUDO_USER, USER or LOGNAME). A ``Settings`` built directly
reads nothing: its operator defaults to "unknown".

Each field ``foo_bar`` of a settings class is the variable ``MILLSTREAM_FOO_BAR``.
Every ``MILLSTREAM_*`` variable in the environment must belong to a known
field, so a typo fails at start-up with a message naming the variable, and so
does a value that does not parse or validate. Other packages add their own
sections (frozen dataclasses with defaults) through the ``millstream.settings``
entry-point group; their variables are then known to every command.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

from streams.errors import ConfigError
from streams.text.redact import redact, secret_values

PREFIX = "MILLSTREAM_"
T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
RETAINED_BUCKETS = 9  # status and dedup buckets kept at once (streams.redis.tasks.KEPT)


@dataclass(frozen=True, slots=True)
class Settings:
    """Core runtime settings; the defaults run on one machine."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "ms"
    consumer: str = ""
    metrics_host: str = "127.0.0.1"  # loopback: set 0.0.0.0 for a scraper on another machine
    metrics_port: int = 9400
    max_payload_bytes: int = 1024 * 1024
    # Retention defaults fit a 1 GB Redis at 100 tasks/s sustained (docs/OPERATIONS.md, "Redis memory").
    dedup_window: float = 3600.0
    heartbeat_ttl: float = 5.0
    claim_interval: float = 1.0
    shutdown_grace: float = 30.0
    status_ttl: float = 7200.0
    status_max_records: int = 1_000_000
    dedup_max_keys: int = 1_000_000
    events_maxlen: int = 10_000
    trim_interval: float = 30.0
    stats_interval: float = 5.0
    dlq_max_age: float = 0.0
    dlq_max_len: int = 100_000
    errors_max_len: int = 100_000  # error records kept in an error stream no stage reads; 0 keeps all
    operator: str = ""
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        check_redis_url(self.redis_url, "MILLSTREAM_REDIS_URL")
        for name in ("heartbeat_ttl", "claim_interval", "trim_interval", "stats_interval",
                     "status_ttl", "dedup_window"):
            if not getattr(self, name) > 0:  # not <= 0: NaN fails too
                raise ConfigError(variable(name), "must be > 0")
        for name in ("status_max_records", "dedup_max_keys"):
            if getattr(self, name) != 0 and getattr(self, name) < RETAINED_BUCKETS:
                raise ConfigError(variable(name), f"must be 0 (no count bound) or >= {RETAINED_BUCKETS} "
                                  "(records are dropped a ninth at a time)")
        if self.events_maxlen < 1:
            raise ConfigError(variable("events_maxlen"), "must be >= 1")
        if not self.metrics_host.strip():
            raise ConfigError(variable("metrics_host"), "must name an address (0.0.0.0: every interface)")
        if self.max_payload_bytes < 1:
            raise ConfigError(variable("max_payload_bytes"), "must be >= 1")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(variable("metrics_port"), "must be a port number (0 turns it off)")
        for name in ("dlq_max_age", "dlq_max_len"):
            if not getattr(self, name) >= 0:
                raise ConfigError(variable(name), "DLQ retention must be >= 0 (0 keeps everything)")
        if self.errors_max_len < 0:
            raise ConfigError(variable("errors_max_len"), "must be >= 0 (0 keeps everything)")
        if not self.operator:
            object.__setattr__(self, "operator", "unknown")
        if not self.consumer:
            object.__setattr__(self, "consumer", f"{os.uname().nodename}-{os.getpid()}")


def check_redis_url(url: str, name: str) -> None:
    """Accept redis://, rediss:// (TLS) and unix:// URLs, with optional ACL user:password.

    Errors show the URL without its password.
    """
    shown = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ConfigError(name, f"{shown!r}: {redact(str(error))}") from None
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(name, f"{shown!r} must start with redis://, rediss:// or unix://")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError(name, f"{shown!r} names no socket path (unix:///path/to/redis.sock)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(name, f"{shown!r} names no host")
    try:
        parts.port  # noqa: B018 - parsing raises on a bad port
    except ValueError as error:
        raise ConfigError(name, f"{shown!r}: {redact(str(error))}") from None


def variable(field: str) -> str:
    return PREFIX + field.upper()


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError("expected true/false")
            return lowered in _TRUE
        if kind in (int, float):
            return kind(raw)
        if kind == tuple[str, ...]:
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        return raw
    except ValueError as error:
        raise ConfigError(name, f"invalid value {raw!r}: {error}") from None


def load(cls: type[T], environ: Mapping[str, str]) -> T:
    """Build settings class ``cls`` from ``environ``; unset variables keep defaults."""
    hints = get_type_hints(cls)
    values = {
        f.name: _parse(variable(f.name), environ[variable(f.name)], hints[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if variable(f.name) in environ
    }
    return cls(**values)


def section(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Settings section ``cls`` (registered by a package) from ``environ`` (default ``os.environ``)."""
    return load(cls, os.environ if environ is None else environ)


def registered_sections() -> list[type[Any]]:
    """Settings classes contributed by installed packages (``millstream.settings``)."""
    return [entry.load() for entry in entry_points(group="millstream.settings")]


def check_unknown(environ: Mapping[str, str], classes: Iterable[type[Any]]) -> None:
    known = {variable(f.name) for cls in classes for f in dataclasses.fields(cls)}
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(name, f"unknown setting{hint}")


def secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secret values among the settings (keys, passwords, URL passwords), for ``streams.text.redact``."""
    return secret_values(os.environ if environ is None else environ)


def is_set(field: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``MILLSTREAM_<FIELD>`` is set in ``environ`` (default ``os.environ``), whatever its value."""
    return variable(field) in (os.environ if environ is None else environ)


def operator_of(environ: Mapping[str, str]) -> str:
    """Who runs the command, for the audit of operator actions: the user behind sudo, else the user."""
    return environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME") or "unknown"


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """The core settings from ``environ`` (default ``os.environ``), validated.

    Unset (or empty), ``MILLSTREAM_OPERATOR`` defaults to the user ``environ`` names (``operator_of``).
    """
    env = os.environ if environ is None else environ
    check_unknown(env, [Settings, *registered_sections()])
    settings = load(Settings, env)
    if not env.get(variable("operator")):
        settings = dataclasses.replace(settings, operator=operator_of(env))
    return settings
