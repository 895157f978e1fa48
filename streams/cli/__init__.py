"""The ``millstream`` command line."""
