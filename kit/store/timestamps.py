"""The store's one time convention: Unix epoch seconds (UTC) as a float.

Every ``ts`` / ``*_ts`` column holds seconds since 1970-01-01 UTC. Functions that take a time accept a
number, a ``datetime`` or an ISO-8601 string; a naive ``datetime`` (like the simulated world's clock)
is read as UTC so the same simulated day gives the same numbers on every machine.

    >>> from datetime import datetime
    >>> to_epoch(datetime(2026, 10, 15, 6, 0))
    1792044000.0
    >>> to_iso(1792044000.0)
    '2026-10-15T06:00:00Z'
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

TimeLike = float | int | datetime | str | None


def to_epoch(value: TimeLike, *, what: str = "time") -> float:
    """Epoch seconds (UTC) for ``value``; ``None`` means now."""
    if value is None:
        return time.time()
    if isinstance(value, bool):
        raise TypeError(f"{what} must be epoch seconds, a datetime or an ISO string, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{what} must be a finite number of epoch seconds, got {value!r}")
        return seconds
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{what} {value!r} is not an ISO-8601 time; write e.g. '2026-10-15T06:00:00Z' or pass epoch seconds"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if hasattr(value, "dtype"):  # numpy scalar
        return to_epoch(float(value), what=what)
    raise TypeError(f"{what} must be epoch seconds, a datetime or an ISO string, got {type(value).__name__} {value!r}")


def to_iso(seconds: float) -> str:
    """ISO-8601 UTC text for epoch ``seconds`` (milliseconds shown only when present)."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")
