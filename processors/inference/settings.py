"""The ``MILLSTREAM_TRITON_*`` settings section.

Its own module, importing only the standard library: every ``millstream``
command loads the registered settings sections, also where numpy and
tritonclient (the image pipeline's extras) are not installed. The client's
config is imported when it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processors.inference.config import InferenceConfig

DEFAULT_URL = "127.0.0.1:8001"


@dataclass(frozen=True, slots=True)
class TritonSettings:
    """The ``MILLSTREAM_TRITON_*`` settings section (each field is ``MILLSTREAM_<FIELD>``).

    An empty ``triton_url`` means "start an embedded tritonserver" (``millstream up``),
    which then uses ``triton_model_config_name`` ("gpu" selects configs/gpu.pbtxt).
    """

    triton_url: str = ""
    triton_short_concurrency: int = 30
    triton_long_concurrency: int = 30
    triton_deadline: float = 60.0
    triton_max_attempts: int = 5
    triton_breaker_failures: int = 5
    triton_breaker_reset: float = 5.0
    triton_ready_timeout: float = 60.0
    triton_model_config_name: str = ""

    def client_config(self, url: str | None = None) -> InferenceConfig:
        """The client's config; ``url`` (an embedded server's) wins over ``triton_url``."""
        from processors.inference.circuit_breaker import BreakerPolicy
        from processors.inference.config import InferenceConfig

        return InferenceConfig(
            url=url or self.triton_url or DEFAULT_URL,
            short_concurrency=self.triton_short_concurrency,
            long_concurrency=self.triton_long_concurrency,
            deadline=self.triton_deadline,
            max_attempts=self.triton_max_attempts,
            breaker=BreakerPolicy(self.triton_breaker_failures, self.triton_breaker_reset),
            ready_timeout=self.triton_ready_timeout,
        )
