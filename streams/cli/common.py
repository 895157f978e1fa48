"""What every command shares: settings from the environment, logging, terminal output, the event loop.

Commands (streams.cli.main, streams.cli.dlq, and plugins such as processors.local.up)
import these from here, so no command module imports another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
import uvloop

from streams.errors import ConfigError
from streams.pipeline import Pipeline
from streams.settings import Settings, from_env, secrets
from streams.text.plaintext import plain
from streams.text.redact import install_log_redaction, redact

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` under uvloop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line flags (those not None) on top."""
    try:
        settings = from_env()
        return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        typer.echo(f"millstream: {error}", err=True)
        raise typer.Exit(2) from None


def setup_logging(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level``, with secrets redacted and untrusted text escaped."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction(secrets())


def shown(text: object) -> str:
    """Text for the operator's terminal: secrets redacted, control characters escaped."""
    return plain(redact(str(text), secrets()))


def load_factory(spec: str) -> Callable[[Settings], Pipeline]:
    """Import ``module:function`` naming a pipeline factory ``(Settings) -> Pipeline``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise typer.BadParameter(f"{spec!r} must look like package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise typer.BadParameter(f"cannot load {spec!r}: {error}") from None
    if not callable(factory):
        raise typer.BadParameter(f"{spec!r} is not callable")
    return factory  # type: ignore[no-any-return]
