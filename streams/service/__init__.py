"""Processes that run pipelines: the worker, the exporter, the supervisor."""
