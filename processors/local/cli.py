"""Commands of the image pipeline, added to ``millstream`` through the
``millstream.commands`` entry point: ``millstream triton`` and ``millstream bench triton``.

Every ``millstream`` invocation imports this module, so it imports nothing heavy:
the launcher is stdlib-only and the benchmark (tritonclient, numpy) loads on use.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from processors.inference.server import (
    DEFAULT_MODEL_REPOSITORY,
    TritonNotInstalled,
    TritonOptions,
    TritonServer,
    TritonStartError,
)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server the same way as Ctrl-C


def triton(
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: any free port)")] = 8001,
    http_port: Annotated[int, typer.Option(help="HTTP port (0: any free port)")] = 8000,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port (0: any free port)")] = 8002,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    model_repository: Annotated[
        Path, typer.Option(help="Triton model repository")
    ] = DEFAULT_MODEL_REPOSITORY,
    model_config_name: Annotated[
        str | None, typer.Option(help="alternate config, e.g. 'gpu' for <model>/configs/gpu.pbtxt")
    ] = None,
) -> None:
    """Run the bundled tritonserver with the text-removal models in the foreground."""
    options = TritonOptions(
        model_repository=model_repository.resolve(),
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        model_config_name=model_config_name,
    )
    try:
        server = TritonServer(options, log=lambda line: typer.echo(line, err=True))
    except TritonNotInstalled as error:
        typer.echo(f"millstream: {error}", err=True)
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.start()
        typer.echo(
            f"tritonserver ready: grpc={server.grpc_url} http={server.http_url} metrics={server.metrics_url}"
        )
        code = server.wait()
    except TritonStartError as error:
        typer.echo(f"millstream: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        code = 0
    finally:
        server.stop()
    raise typer.Exit(code)


def bench_triton(
    requests_per_client: Annotated[int, typer.Option(help="requests per concurrent client, per level")] = 3,
    fixtures_per_background: Annotated[int, typer.Option(help="fixture images per background kind")] = 4,
) -> None:
    """Images/s and latency of inpaint_short with and without dynamic batching; PSNR vs OpenCV."""
    from bench.triton import main

    main(requests_per_client=requests_per_client, fixtures_per_background=fixtures_per_background)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Entry point of ``millstream.commands``."""
    app.command("triton")(triton)
    bench.command("triton")(bench_triton)
