"""Times on the command line: ISO 8601, unix seconds, or an age such as 90s, 15m, 2h, 7d."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from streams.errors import StreamsError

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds for ``text``; an age counts back from ``now``. Naive ISO times are UTC."""
    now = time.time() if now is None else now
    if age := _AGE.match(text.strip()):
        return now - float(age.group(1)) * _UNIT[age.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StreamsError(f"cannot read time {text!r}: use ISO 8601 (2026-11-22T10:00), "
                           "unix seconds, or an age (90s, 15m, 2h, 7d)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
