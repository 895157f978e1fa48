"""``python -m streams`` is the ``millstream`` command."""

from streams.cli import main

main()
