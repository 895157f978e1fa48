"""Killable worker processes for blocking work: ``KillablePool`` (streams.killable.pool)."""

from streams.killable.pool import KillablePool, resident_bytes

__all__ = ["KillablePool", "resident_bytes"]
