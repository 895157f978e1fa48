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
            SoftTimeout        raised inside the handler at the stage's soft_timeout (catchable)
            HardTimeout        a KillablePool killed the worker process running past its timeout
          WorkerLost           a KillablePool's worker process died, or broke the protocol, mid-task
          RemoteRetryableError a RetryableError raised by the function in the worker process
          RateLimited          a shared rate limit has no slot soon enough (streams.redis.ratelimit)
          InferenceUnavailable Triton down, overloaded or past its deadline (processors)
        PermanentError         an error record at once, never retried
          InvalidPayload       the payload is not what the processor accepts
          RemotePermanentError a PermanentError raised by the function in the worker process
          InferenceRejected    Triton refused the request: bad shape, model error (processors)
        RemoteError            any other exception of a function run in a KillablePool (streams.killable)

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


class SoftTimeout(ProcessingTimeout):
    """Raised inside the handler at the stage's ``soft_timeout``; it may catch it and finish.

    Uncaught, it fails the attempt like any timeout (retryable). At the stage's
    ``timeout`` the handler is cancelled for good (``ProcessingTimeout``).
    """

    def __init__(self, seconds: float, hard: float) -> None:
        super().__init__(seconds)
        self.args = (f"handler exceeded its soft timeout of {seconds:g} s (hard timeout {hard:g} s)",)
        self.hard = hard


class HardTimeout(ProcessingTimeout):
    """Work in a KillablePool ran past its timeout: its process was killed and replaced."""

    def __init__(self, seconds: float, pid: int, function: str) -> None:
        super().__init__(seconds)
        self.args = (f"{function} ran past its hard timeout of {seconds:g} s: "
                     f"worker process {pid} was killed and replaced",)
        self.pid, self.function = pid, function


class WorkerLost(RetryableError):
    """A KillablePool's worker process died (a crash, a kill for memory) or sent a malformed
    frame while running a task; it was replaced. ``reason`` says which."""

    def __init__(self, pid: int, function: str, reason: str) -> None:
        super().__init__(f"worker process {pid} running {function}: {reason}; it was replaced")
        self.pid, self.function, self.reason = pid, function, reason


class RemoteError(ProcessingError):
    """The function run in a KillablePool's worker process raised; only its type's name, its
    message and its traceback's text cross the pipe (never the exception object itself)."""

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message, self.traceback = type_name, message, traceback


class RemoteRetryableError(RemoteError, RetryableError):
    """The remote function raised a RetryableError."""


class PermanentError(ProcessingError):
    """A failure that a retry cannot fix: the task ends as an error record."""


class InvalidPayload(PermanentError):
    """The payload lacks a field or has a field of the wrong type."""


class RemotePermanentError(RemoteError, PermanentError):
    """The remote function raised a PermanentError."""
