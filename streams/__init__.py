"""millstream runtime on Redis Streams."""
