"""The producer spool: tasks accepted while Redis is unreachable, kept in SQLite, drained in order.

See docs/spool.md. ``SpoolingPublisher`` (spooling.py) wraps a Publisher;
``SpoolStore`` (store.py) is the file; ``SpoolSettings`` (settings.py) the
``MILLSTREAM_SPOOL_*`` variables.
"""

from streams.spool.errors import SpoolError, SpoolFull
from streams.spool.metrics import SpoolMetrics
from streams.spool.settings import SpoolSettings
from streams.spool.spooling import Accepted, SpoolingPublisher
from streams.spool.store import SpoolStore

__all__ = ["Accepted", "SpoolError", "SpoolFull", "SpoolMetrics", "SpoolSettings", "SpoolStore",
           "SpoolingPublisher"]
