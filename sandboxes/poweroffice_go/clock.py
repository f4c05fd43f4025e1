"""Response timestamps: ISO 8601 with offset and microseconds, from the real clock, strictly increasing."""
from __future__ import annotations

import datetime as dt
import re
import time

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PARSE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


def format_micros(micros: int) -> str:
    """Format epoch microseconds as ``2026-11-26T19:58:01.123456+00:00`` (fixed width, so strings sort by time)."""
    return (_EPOCH + dt.timedelta(microseconds=micros)).isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> str | None:
    """Parse a filter value the lenient way .NET does and return it in the stored format (floored to µs), or None.

    Accepts ``2021-09-25 08:03:00.1234567 -00:00``, ``2025-01-01T00:00:00+00:00``, ``...Z`` and no offset (UTC).
    """
    match = _PARSE.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                             int((fraction or "0")[:6].ljust(6, "0")), tzinfo=dt.UTC)
    except ValueError:
        return None
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 14 or minutes > 59:
            return None
        moment -= sign * dt.timedelta(hours=hours, minutes=minutes)
    return moment.isoformat(timespec="microseconds")


class Clock:
    """Hands out timestamps that never repeat or go backwards, so two writes never share one."""

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> str:
        """Return the current time, nudged one microsecond past the previous value when the clock has not moved."""
        micros = max(time.time_ns() // 1000, self._last + 1)
        self._last = micros
        return format_micros(micros)

    def today(self) -> str:
        """Return today's date (UTC) as ``YYYY-MM-DD``."""
        return dt.datetime.now(dt.UTC).date().isoformat()
