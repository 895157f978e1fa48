"""The engine: read → handle → commit, on any transport (streams.transport)."""
