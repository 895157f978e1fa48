"""The exception tree of millstream.

::

    StreamsError
      ConfigError              bad settings, raised at start-up
      TransportError           Redis unreachable or a command failed
      PayloadTooLarge          publish refused: encoded payload over the limit
      DecodeError              a stream entry that is not a millstream envelope
      ProcessingError          raised by processors and middleware
        RetryableError         transient: retried by the stage's policy
          ProcessingTimeout    the handler ran past the stage's timeout
          RateLimited          a shared rate limit has no slot soon enough (streams.redis.ratelimit)
          InferenceUnavailable Triton down, overloaded or past its deadline (processors)
        PermanentError         an error record at once, never retried
          InvalidPayload       the payload is not what the processor accepts
          InferenceRejected    Triton refused the request: bad shape, model error (processors)

Processors raise; they do not catch-and-log. Only the runner, where an
exception becomes a Decision, catches broadly. An exception that is neither
retryable nor permanent (a bug, say) is treated as retryable: the retry budget
bounds it and the dead-letter stream keeps the entry for a replay after a fix.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every error millstream raises on purpose."""


class ConfigError(StreamsError):
    """A setting is missing, unknown or invalid; ``variable`` names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class TransportError(StreamsError):
    """Redis could not be reached or refused a command."""


class PayloadTooLarge(StreamsError):
    """The encoded payload is larger than the configured limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"payload is {size} bytes encoded, over the limit of {limit} bytes "
            "(MILLSTREAM_MAX_PAYLOAD_BYTES); store large data elsewhere and send a reference"
        )
        self.size = size
        self.limit = limit


class DecodeError(StreamsError):
    """A stream entry could not be decoded into a message."""


class ProcessingError(StreamsError):
    """Raised by a processor or middleware while handling one message."""


class RetryableError(ProcessingError):
    """A transient failure: the message is retried with backoff."""


class ProcessingTimeout(RetryableError):
    """The handler did not finish within the stage's timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"handler exceeded its timeout of {seconds:g} s")
        self.seconds = seconds


class PermanentError(ProcessingError):
    """A failure that a retry cannot fix: the task ends as an error record."""


class InvalidPayload(PermanentError):
    """The payload lacks a field or has a field of the wrong type."""
