"""streams.testing: run pipelines without Redis, as a test double that ships with millstream.

* ``MemoryBroker``, ``MemoryTransport``, ``MemoryPublisher``: the transport
  contract (streams.transport) in memory, with Redis's semantics
  (tests/conformance checks both against one suite).
* ``ManualClock``: time the test moves (idle times, due retries, heartbeats).
* ``run_pipeline``: a whole Pipeline's stages in this process, and what they
  wrote (harness.py).

See docs/TESTING.md.
"""

from streams.testing.clock import ManualClock
from streams.testing.harness import PipelineRun, run_pipeline
from streams.testing.memory_broker import MemoryBroker, MemoryOutage
from streams.testing.memory_publisher import MemoryPublisher
from streams.testing.memory_transport import MemoryStageTransport, MemoryTransport

__all__ = [
    "ManualClock",
    "MemoryBroker",
    "MemoryOutage",
    "MemoryPublisher",
    "MemoryStageTransport",
    "MemoryTransport",
    "PipelineRun",
    "run_pipeline",
]
