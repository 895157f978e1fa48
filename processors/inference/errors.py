"""What can go wrong in an inference call, split by what the caller should do.

```
InferenceUnavailable   retryable: Triton down or unreachable, overloaded (queue full),
                       the call's deadline passed, or the circuit breaker is open
InferenceRejected      permanent: bad input shape or type, unknown model, the model
                       itself failed on this input
```
Both carry data as attributes (``model``, ``kind`` and the gRPC ``status`` when
there was one) and sit in the streams error tree (RetryableError /
PermanentError), so a stage retries the first and records the second.
"""

from __future__ import annotations

from typing import Final

from streams.errors import PermanentError, RetryableError

# kinds of InferenceUnavailable
UNAVAILABLE: Final = "unavailable"
OVERLOADED: Final = "overloaded"
DEADLINE: Final = "deadline"
CIRCUIT_OPEN: Final = "circuit_open"
# kinds of InferenceRejected
INVALID: Final = "invalid"
MODEL_ERROR: Final = "model_error"

_RETRYABLE_STATUS = {
    "UNAVAILABLE": UNAVAILABLE,
    "RESOURCE_EXHAUSTED": OVERLOADED,
    "DEADLINE_EXCEEDED": DEADLINE,
    "CANCELLED": UNAVAILABLE,  # the server cancelled it (shutting down); the caller did not
    "ABORTED": UNAVAILABLE,
    "UNKNOWN": UNAVAILABLE,  # what a dropped connection can surface as
}
_PERMANENT_STATUS = {
    "INVALID_ARGUMENT": INVALID,
    "NOT_FOUND": INVALID,
    "UNIMPLEMENTED": INVALID,
    "FAILED_PRECONDITION": INVALID,
    "OUT_OF_RANGE": INVALID,
    "INTERNAL": MODEL_ERROR,
}
# Triton answers a full dynamic-batching queue with UNAVAILABLE and this text.
_QUEUE_FULL = "exceeds maximum queue size"


class InferenceUnavailable(RetryableError):
    """Transient: the same call may succeed later."""

    def __init__(self, message: str, *, model: str, kind: str, status: str | None = None) -> None:
        super().__init__(message)
        self.model, self.kind, self.status = model, kind, status


class InferenceRejected(PermanentError):
    """Permanent: retrying the same input will fail the same way."""

    def __init__(self, message: str, *, model: str, kind: str, status: str | None = None) -> None:
        super().__init__(message)
        self.model, self.kind, self.status = model, kind, status


def classify(status: str | None, message: str, model: str) -> InferenceUnavailable | InferenceRejected:
    """Map a Triton/gRPC failure (status like ``"StatusCode.UNAVAILABLE"``) to our errors.

    Unknown statuses count as transient: a retry policy bounds them anyway,
    while a wrong "permanent" would drop work that could have succeeded.
    """
    code = (status or "").rsplit(".", 1)[-1].upper()
    text = f"{model}: {message}"
    if code in _PERMANENT_STATUS:
        return InferenceRejected(text, model=model, kind=_PERMANENT_STATUS[code], status=code)
    kind = _RETRYABLE_STATUS.get(code, UNAVAILABLE)
    if _QUEUE_FULL in message.lower():
        kind = OVERLOADED
    return InferenceUnavailable(text, model=model, kind=kind, status=code or None)
