"""The HTTP face of a pipeline: producers' ingest, operators' routes, live events, the dashboard."""
