"""Benchmark of the limits shared through PostgreSQL (``clients/shared_limits.py``).

    .venv/bin/python bench/shared_limits.py [DSN]

Measures the cost of one acquisition (take + release, one process, no waiting) and the aggregate request rate that
1, 4 and 10 processes on one credential reach against the 10 requests/s floor. Without a DSN it uses the machine's
PostgreSQL on 127.0.0.1:5432, or an embedded one (tools/postgres.py). The worker functions are also used by the tests.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "plugins", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from pogo_invoiced_sync.clients.shared_limits import SharedSlots, in_flight_limiter  # noqa: E402


def connector(dsn: str):
    """A ``connect`` callable for a DSN (picklable pieces only cross process boundaries, so build it in the child)."""
    import psycopg

    return lambda: psycopg.connect(dsn)


def take_slots(
    dsn: str, credential: str, limit: int, cooldown: float, count: int, hold: float, lease: float = 120.0
) -> list[tuple[float, float]]:
    """Hold ``count`` slots one after another for ``hold`` seconds each; return (start, end) wall-clock times."""
    slots = SharedSlots(connector(dsn), credential, limit, cooldown=cooldown, lease=lease)
    spans = []
    try:
        for _ in range(count):
            with slots.slot():
                start = time.time()
                if hold:
                    time.sleep(hold)
                spans.append((start, time.time()))
    finally:
        slots.close()
    return spans


def keep_slots_in_threads(dsn: str, credential: str, limit: int, threads: int, calls: int, hold: float) -> list:
    """``threads`` threads making ``calls`` requests each inside keep(); the (start, end) of every request."""
    limiter = in_flight_limiter(connector(dsn), credential, limit)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(calls):
            with limiter.slot():
                start = time.time()
                time.sleep(hold)
                with lock:
                    spans.append((start, time.time()))

    try:
        with limiter.keep():
            workers = [threading.Thread(target=work) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        limiter.close()
    return spans


def call_api(
    dsn: str | None, credential: str, per_second: int, count: int, url: str, subscription_key: str
) -> list[int]:
    """Send ``count`` requests to ``url`` with the subscription key, through the shared limiter when ``dsn`` is set.

    Without ``dsn`` each process limits only itself (today's per-process limiter): what several workers did before.
    """
    import requests

    from pogo_invoiced_sync.clients.limits import RequestRateLimiter

    limiter = (
        SharedSlots(connector(dsn), credential, per_second, cooldown=1.0) if dsn else RequestRateLimiter(per_second)
    )
    statuses = []
    with requests.Session() as http:
        for _ in range(count):
            with limiter.slot():
                statuses.append(
                    http.get(url, headers={"Ocp-Apim-Subscription-Key": subscription_key}, timeout=30).status_code
                )
    return statuses


def in_parallel(target, arguments: list[tuple]) -> list:
    """Run ``target`` once per argument tuple, each in its own (spawned) process; return their results in order."""
    with multiprocessing.get_context("spawn").Pool(len(arguments)) as pool:
        return pool.starmap(target, arguments)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most ``times`` that fall in any half-open interval of length ``window``."""
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most spans held at one instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1]))
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def main(dsn: str) -> None:
    credential = f"bench-{uuid.uuid4().hex[:8]}"
    # Overhead: many slots, no cooldown, nothing held: every acquisition is one take and one release.
    spans = take_slots(dsn, credential + "-overhead", 1000, 0.0, 1, 0.0)  # creates the schema and the slots
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        take_slots(dsn, credential + "-overhead", 1000, 0.0, 200, 0.0)
        rounds.append((time.perf_counter() - started) / 200 * 1000)
    print(f"one acquisition (take + release, incl. connecting once per 200): median {statistics.median(rounds):.2f} ms")
    print("| processes | requests | seconds | rate after the first ten (req/s) | floor | most in any 1 s |")
    print("|---|---|---|---|---|---|")
    for processes in (1, 4, 10):
        per_process = 60 // processes
        started = time.time()
        results = in_parallel(
            take_slots, [(dsn, f"{credential}-{processes}", 10, 1.0, per_process, 0.005) for _ in range(processes)]
        )
        elapsed = time.time() - started
        starts = [s for spans in results for s, _ in spans]
        total = len(starts)
        # The floor: 10 start at once, and each later ten one second after the previous ten completed.
        print(
            f"| {processes} | {total} | {elapsed:.1f} | {(total - 10) / (max(starts) - min(starts)):.2f} | "
            f"{(total - 1) // 10:.1f} s between first and last start (measured {max(starts) - min(starts):.1f} s) | "
            f"{max_in_window(starts)} |"
        )
    del spans


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        import psycopg

        from tools.postgres import ensure_postgres, stop_embedded, with_database

        with tempfile.TemporaryDirectory() as data:
            server, _where = ensure_postgres(Path(data))
            name = f"bench_limits_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                main(with_database(server, name))
            finally:
                with psycopg.connect(server, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                stop_embedded(Path(data))
