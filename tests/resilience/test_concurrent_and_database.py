"""Two runs of one flow at once, and the PostgreSQL connection lost mid-run."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.conftest import invoiced_connection, pogo_connection
from tests.resilience import engine_run, scenario

pytestmark = pytest.mark.integration


def test_two_runs_of_each_flow_at_once_write_nothing_twice(stack):
    """Both runs plan the same creates and updates (the second reconciles before the first writes), then write at
    the same moment: the link re-check, the create intents and the APIs' idempotency must keep one copy."""
    edits = scenario.prepare(stack)
    for flow in scenario.FLOWS:
        meet = threading.Barrier(2)
        errors: list[BaseException] = []

        def one_run(run_id: str) -> None:
            try:
                engine_run.run_steps(stack, flow, run_id, before_upsert=meet)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                meet.abort()

        runs = [threading.Thread(target=one_run, args=(f"concurrent-{flow}-{n}",)) for n in (1, 2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(120)
        assert not any(run.is_alive() for run in runs), f"{flow}: a concurrent run hung"
        # A run may fail (e.g. a create the other run made first); it must not leave a second copy behind.
        for exc in errors:
            print(f"{flow}: a concurrent run failed: {type(exc).__name__}: {exc}")
    scenario.recover(stack)
    scenario.verify(stack, edits)


def _terminate_our_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def _when(predicate, action, deadline_seconds: float = 60.0) -> threading.Thread:
    """Do ``action`` in a thread as soon as ``predicate`` holds (polled, bounded)."""
    fired = []

    def watch():
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if predicate():
                fired.append(action())
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.fired = fired
    thread.start()
    return thread


def _copying(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND state <> 'idle' AND query ILIKE 'COPY%%staging%%'").fetchall())


@pytest.mark.parametrize("moment", ["extract", "upsert"])
def test_the_database_connection_is_lost_mid_run(stack, moment, monkeypatch):
    """Our PostgreSQL sessions are terminated while a run is reading (staging) or writing (API calls in flight)."""
    edits = scenario.prepare(stack)
    if moment == "upsert":
        # One write at a time: the cut lands after the first write and before the step records its outcomes (with
        # every write in flight at once, the step could record them all before the cut, and nothing would notice).
        monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection(stack.sandboxes, max_workers=1))
        monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection(stack.sandboxes, max_workers=1))
        slow = {"latency_ms": 150, "methods": ["POST", "PATCH"]}
        started = lambda: stack.writes()["poweroffice_go"] + stack.writes()["invoiced"] > 0  # noqa: E731
    else:
        # The extract streams the API's pages into a COPY: cut the connection while that COPY is open.
        slow = {"latency_ms": 150, "methods": ["GET"]}
        started = lambda: _copying(stack.dsn)  # noqa: E731
    failed = 0
    for flow in scenario.FLOWS:
        stack.sandboxes.pogo.faults(**slow)
        stack.sandboxes.invoiced.faults(**slow)
        stack.sandboxes.pogo.clear_counters()
        stack.sandboxes.invoiced.clear_counters()
        watcher = _when(started, lambda: _terminate_our_backends(stack.dsn))
        state = scenario.run(stack, flow)
        failed += state != "success"
        watcher.join(60)
        assert watcher.fired, f"{flow}: the run never reached the {moment}"
    scenario.faults_off(stack)
    assert failed >= 1, "no run noticed the lost connection"
    scenario.recover(stack)
    scenario.verify(stack, edits)
