"""The two rate-limit models the real APIs use: requests per second, and requests in flight."""
from __future__ import annotations

import collections
import time


class RequestsPerSecond:
    """Sliding one-second window per credential, like PowerOffice Go's APIM policy (10 rps per subscription key)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def acquire(self, key: str) -> bool:
        """Admit one request for ``key`` unless the last second already holds ``limit`` of them."""
        now = time.monotonic()
        window = self._seen[key]
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True

    def release(self, key: str) -> None:
        """Nothing to release: the window expires by itself."""


class RequestsInFlight:
    """Concurrency cap per credential, like Invoiced's limiter (at most 20 requests in flight per API key)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: collections.Counter = collections.Counter()

    def acquire(self, key: str) -> bool:
        """Admit one request for ``key`` while fewer than ``limit`` are in flight."""
        if self._in_flight[key] >= self.limit:
            return False
        self._in_flight[key] += 1
        return True

    def release(self, key: str) -> None:
        """Mark one request of ``key`` as finished."""
        self._in_flight[key] -= 1
