"""``python -m streams`` is the ``millstream`` command."""

from streams.cli.main import main

main()
