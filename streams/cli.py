"""The ``millstream`` command line: a thin layer over the library.

Commands that belong to other packages (the Triton launcher, benchmarks of the
image pipeline) are contributed through the ``millstream.commands`` entry-point
group: each entry names a ``register(app, bench)`` function, so this module
never imports ``processors``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

app = typer.Typer(help="millstream: stream processing on Redis Streams.", no_args_is_help=True)
bench_app = typer.Typer(help="Reproducible benchmarks that print their figures.")
app.add_typer(bench_app, name="bench")


def _register_plugins() -> None:
    for entry in entry_points(group="millstream.commands"):
        entry.load()(app, bench_app)


def main() -> None:
    """Console-script entry point."""
    _register_plugins()
    app()
