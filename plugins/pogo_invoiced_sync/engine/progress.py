"""Progress of a long step in the task log: done / total where known, rate and time left, every ``INTERVAL`` seconds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

INTERVAL = 30.0  # seconds between two progress lines while a step runs


class Progress:
    """Logs how far a step is on a timer thread, so that a stalled step (backoff, a slow page) says so too.

    Use as a context manager; the step calls :meth:`add` as work completes. Nothing is logged for a step that ends
    within the first interval.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        unit: str = "records",
        total: int | None = None,
        total_of: Callable[[], int | None] | None = None,
        interval: float | None = None,
    ) -> None:
        self.log, self.what, self.unit = log, what, unit
        self.total, self.total_of = total, total_of
        self.interval = INTERVAL if interval is None else interval
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread: threading.Thread | None = None

    def add(self, count: int) -> None:
        """Count ``count`` more units done."""
        with self._lock:
            self.done += count

    def over(self, pages: Iterable[list]) -> Iterator[list]:
        """Yield ``pages`` unchanged, counting their items; the timer runs while they are read."""
        with self:
            for page in pages:
                self.add(len(page))
                yield page

    def line(self) -> str:
        """The progress line as of now."""
        with self._lock:
            done = self.done
        total = self.total_of() if self.total_of is not None else self.total
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = done / elapsed
        text = f"{self.what}: {done:,}"
        if total:
            text += f" / {total:,} {self.unit} ({min(done / total, 1.0):.0%})"
        else:
            text += f" {self.unit} so far"
        text += f", {rate:,.0f} {self.unit}/s, {_duration(elapsed)} elapsed"
        if total and rate > 0 and done < total:
            text += f", about {_duration((total - done) / rate)} left"
        return text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.log.info("%s", self.line())

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._run, name=f"progress {self.what}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _duration(seconds: float) -> str:
    """``42 s``, ``6 min 10 s`` or ``1 h 05 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
