"""Redis-facing parts: connection, the function library, publisher, consumer side."""
