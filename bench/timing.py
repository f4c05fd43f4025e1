"""Measuring from the outside: a timing proxy around the link store, and a peak-RSS sampler."""
from __future__ import annotations

import collections
import contextlib
import resource
import threading
import time
import types
from typing import Any


class StoreTimes:
    """Seconds and calls per LinkStore method, in total and per thread (a task calls its store from one thread;
    tasks of flows that run at the same time call theirs from different threads)."""

    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()
        self._by_thread: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] += seconds
            self.calls[name] += 1
            self._by_thread[threading.get_ident()] += seconds

    def total(self) -> float:
        with self._lock:
            return sum(self.seconds.values())

    def thread_total(self) -> float:
        """Seconds of store calls made by the calling thread so far."""
        with self._lock:
            return self._by_thread[threading.get_ident()]


class TimedStore:
    """Wraps a LinkStore: every public method call is timed; so are the steps of returned generators and
    the enter/exit of returned context managers (``flow_lock``).

    Time spent inside generator *arguments* (``write_staging`` consumes the pages of the API listing) is
    subtracted, so the API's time is not counted as link-store time.
    """

    def __init__(self, store: Any, times: StoreTimes) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_times", times)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._store, name, value)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr
        times = self._times

        def timed(*args, **kwargs):
            excluded = [0.0]
            args = tuple(_excluding(a, excluded) if isinstance(a, types.GeneratorType) else a for a in args)
            started = time.perf_counter()
            result = attr(*args, **kwargs)
            spent = time.perf_counter() - started - excluded[0]
            if isinstance(result, types.GeneratorType):
                times.add(name, spent)
                return _timed_generator(result, name, times)
            if isinstance(result, contextlib.AbstractContextManager) and not hasattr(result, "execute"):
                times.add(name, spent)
                return _TimedContext(result, name, times)
            times.add(name, spent)
            return result

        return timed


def _excluding(gen, excluded: list[float]):
    """Re-yield ``gen``, adding the time spent producing each item to ``excluded``."""
    while True:
        started = time.perf_counter()
        try:
            item = next(gen)
        except StopIteration:
            excluded[0] += time.perf_counter() - started
            return
        excluded[0] += time.perf_counter() - started
        yield item


def _timed_generator(gen, name: str, times: StoreTimes):
    while True:
        started = time.perf_counter()
        try:
            item = next(gen)
        except StopIteration:
            times.seconds[name] += time.perf_counter() - started
            return
        times.seconds[name] += time.perf_counter() - started
        yield item


class _TimedContext:
    def __init__(self, inner, name: str, times: StoreTimes) -> None:
        self.inner, self.name, self.times = inner, name, times

    def __enter__(self):
        started = time.perf_counter()
        try:
            return self.inner.__enter__()
        finally:
            self.times.seconds[self.name] += time.perf_counter() - started

    def __exit__(self, *exc):
        started = time.perf_counter()
        try:
            return self.inner.__exit__(*exc)
        finally:
            self.times.seconds[self.name] += time.perf_counter() - started


def maxrss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds; ``peak_since_mark()`` gives the peak of a phase."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, rss_mib())

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def mark(self) -> None:
        self._peak = rss_mib()

    def peak_since_mark(self) -> float:
        return max(self._peak, rss_mib())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
