"""Rate and in-flight limiters, and the process-wide registry that shares them (and tokens) per credential.

A client takes any object with a ``slot()`` context manager yielding the seconds waited (:class:`Limiter`), so a
limiter shared across processes can replace the process-local ones below.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Limiter(Protocol):
    """What a client needs of a limiter: hold a slot for one request."""

    def slot(self) -> AbstractContextManager[float]:
        """Hold a slot for the duration of one request; yields the seconds waited for it."""
        ...


class RequestRateLimiter:
    """At most ``per_second`` requests in any one-second window, spaced evenly; safe across threads.

    A slot is only freed one second after its request *completed*: the server's window counts arrivals, which
    happen somewhere between our send and our receipt, so counting from completion can never exceed its limit,
    whatever the latency or thread scheduling.
    """

    def __init__(self, per_second: float, margin: float = 0.01) -> None:
        if per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.limit = max(1, int(per_second))
        self.interval = 1.0 / per_second
        self.margin = margin
        self._cond = threading.Condition()
        self._in_flight = 0
        self._cooling: collections.deque[float] = collections.deque()  # monotonic times slots become free
        self._next_start = 0.0

    def acquire(self) -> float:
        """Block until a request may start; return the seconds waited."""
        started = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                while self._cooling and self._cooling[0] <= now:
                    self._cooling.popleft()
                timeout: float | None
                if self._in_flight + len(self._cooling) >= self.limit:
                    timeout = self._cooling[0] - now if self._cooling else None
                elif now < self._next_start:
                    timeout = self._next_start - now
                else:
                    self._in_flight += 1
                    self._next_start = now + self.interval
                    return now - started
                self._cond.wait(timeout)

    def release(self) -> None:
        """Mark one request as completed; its slot cools down for a second."""
        with self._cond:
            self._in_flight -= 1
            self._cooling.append(time.monotonic() + 1.0 + self.margin)
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot for the duration of one request; yields the seconds waited."""
        waited = self.acquire()
        try:
            yield waited
        finally:
            self.release()


class InFlightLimiter:
    """At most ``limit`` requests in flight at once; safe across threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one of the slots for the duration of one request; yields the seconds waited."""
        started = time.monotonic()
        self._semaphore.acquire()
        try:
            yield time.monotonic() - started
        finally:
            self._semaphore.release()


_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[tuple[str, str], Any] = {}


def shared(kind: str, key_parts: tuple[Any, ...], factory: Callable[[], T]) -> T:
    """Return the process-wide object of ``kind`` for a credential, creating it once (first settings win)."""
    key = (kind, credential_fingerprint(*key_parts))
    with _REGISTRY_LOCK:
        if key not in _REGISTRY:
            _REGISTRY[key] = factory()
        return _REGISTRY[key]


def clear_shared_state() -> None:
    """Forget every shared limiter and token (tests; a process normally keeps them for its lifetime)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def credential_fingerprint(*parts: Any) -> str:
    """Hash credential parts, so that registries never hold secrets as keys."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
