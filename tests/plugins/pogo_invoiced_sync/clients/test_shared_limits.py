"""Limits shared through PostgreSQL by several processes using one credential (real PostgreSQL, real sandbox)."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import psycopg
import pytest

from bench.shared_limits import call_api, in_parallel, keep_slots_in_threads, max_in_window, max_overlap, take_slots
from pogo_invoiced_sync.clients.shared_limits import SharedSlots, in_flight_limiter, rate_limiter, slot_state


def _credential() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_processes_sharing_a_key_never_start_more_than_the_limit_in_any_second(postgres_dsn):
    results = in_parallel(take_slots, [(postgres_dsn, "shared-rate-" + _credential(), 5, 1.0, 6, 0.01)] * 4)

    starts = [start for spans in results for start, _ in spans]
    assert len(starts) == 24
    assert max_in_window(starts) <= 5


def test_processes_sharing_an_in_flight_limit_never_hold_more_than_it_at_once(postgres_dsn):
    results = in_parallel(take_slots, [(postgres_dsn, "shared-flight-" + _credential(), 3, 0.0, 5, 0.05)] * 5)

    spans = [span for spans in results for span in spans]
    assert len(spans) == 25
    assert max_overlap(spans) <= 3


def test_two_credentials_do_not_share_their_slots(postgres_dsn):
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    first, second = (rate_limiter(connect, _credential(), 1) for _ in range(2))
    try:
        with first.slot(), second.slot() as waited:
            assert waited < 5  # were the slot shared, this would wait for the first release (never, here)
    finally:
        first.close()
        second.close()


def test_a_released_rate_slot_cools_down_before_it_is_taken_again(postgres_dsn):
    limiter = rate_limiter(lambda: psycopg.connect(postgres_dsn), _credential(), 1)
    try:
        with limiter.slot():
            pass
        with limiter.slot() as waited:
            assert waited >= 0.9
    finally:
        limiter.close()


@pytest.mark.parametrize("cooldown", [1.0, 0.0], ids=["rate", "in_flight"])
def test_releasing_a_slot_logs_no_warning(postgres_dsn, caplog, cooldown):
    limiter = SharedSlots(lambda: psycopg.connect(postgres_dsn), _credential(), 2, cooldown=cooldown)
    try:
        with caplog.at_level(logging.WARNING, logger="pogo_invoiced_sync.clients.shared_limits"), limiter.slot():
            pass
    finally:
        limiter.close()

    assert caplog.records == []


def test_a_waiter_reserves_a_cooling_slot_and_starts_only_once_it_is_free(postgres_dsn):
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    credential = _credential()
    limiter = SharedSlots(connect, credential, 1, cooldown=1.0, reserve_ahead=2.0)
    reserved: list[dict] = []
    try:
        with limiter.slot():
            completed = time.time()  # the request's end: the limiter marks its completion after this
        watcher = threading.Timer(0.3, lambda: reserved.extend(slot_state(connect, credential)))
        watcher.start()
        with limiter.slot():
            started = time.time()
        watcher.join()
    finally:
        limiter.close()

    assert reserved[0]["holder"] is not None  # taken while it still cooled down
    assert started >= completed + 1.0


def test_a_released_rate_slot_cools_from_when_its_request_completed(postgres_dsn):
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    credential = _credential()
    limiter = rate_limiter(connect, credential, 1)
    try:
        slot, holder, _ = limiter.acquire()
        limiter.release(slot, holder, completed=time.monotonic() - 0.6)  # the release reached us late
        with connect() as conn:
            due = conn.execute(
                "SELECT extract(epoch FROM free_at - clock_timestamp()) FROM pogo_invoiced_sync_limits.slots "
                "WHERE credential = %s",
                (credential,),
            ).fetchone()[0]
    finally:
        limiter.close()

    assert 0 < due < 0.5


def test_threads_of_one_process_on_a_rate_limiter_never_start_more_than_the_limit_in_any_second(postgres_dsn):
    limiter = rate_limiter(lambda: psycopg.connect(postgres_dsn), _credential(), 3)
    starts: list[float] = []

    def work() -> None:
        for _ in range(3):
            with limiter.slot():
                starts.append(time.time())
                time.sleep(0.01)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()

    assert len(starts) == 15
    assert max_in_window(starts) <= 3


def test_a_slot_held_by_a_vanished_process_is_free_once_its_lease_ends(postgres_dsn):
    credential = _credential()
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    crashed = in_flight_limiter(connect, credential, 1, lease=1.0)
    crashed.acquire()  # and never released: the process "dies" holding it
    crashed.close()

    survivor = in_flight_limiter(connect, credential, 1, lease=1.0)
    try:
        with survivor.slot() as waited:
            assert waited > 0.5
            assert [s["holder"] is not None for s in slot_state(connect, credential)] == [True]
    finally:
        survivor.close()
    assert [s["holder"] for s in slot_state(connect, credential)] == [None]


def test_threads_of_one_process_share_the_slots_with_everyone_else(postgres_dsn):
    limiter = SharedSlots(lambda: psycopg.connect(postgres_dsn), _credential(), 2, cooldown=0.0)
    spans: list[tuple[float, float]] = []

    def work() -> None:
        for _ in range(3):
            with limiter.slot():
                start = time.time()
                time.sleep(0.03)
                spans.append((start, time.time()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()

    assert len(spans) == 12
    assert max_overlap(spans) <= 2


def test_a_limiter_that_lost_its_connection_reconnects(postgres_dsn):
    limiter = rate_limiter(lambda: psycopg.connect(postgres_dsn), _credential(), 5)
    try:
        with limiter.slot():
            pass
        for conn in limiter._idle:
            conn.close()  # as a database restart would
        with limiter.slot() as waited:
            assert waited >= 0
    finally:
        limiter.close()


@pytest.mark.integration
def test_workers_sharing_a_subscription_key_get_no_429_from_the_sandbox_through_the_shared_limiter(
    sandboxes, postgres_dsn
):
    url = f"{sandboxes.pogo_url}/v2/Customers"
    key = sandboxes.settings.pogo_subscription_key
    sandboxes.pogo.clear_counters()

    statuses = in_parallel(call_api, [(postgres_dsn, "sandbox-" + _credential(), 10, 12, url, key)] * 4)

    assert sum(len(s) for s in statuses) == 48
    assert 429 not in {code for s in statuses for code in s}
    assert "429" not in str(sandboxes.pogo.counters()["statuses"])


@pytest.mark.integration
def test_workers_limiting_only_themselves_get_429s_from_the_sandbox(sandboxes):
    """The control: what several workers with a process-local limiter each did before."""
    url = f"{sandboxes.pogo_url}/v2/Customers"
    key = sandboxes.settings.pogo_subscription_key

    statuses = in_parallel(call_api, [(None, "unused", 10, 12, url, key)] * 4)

    assert 429 in {code for s in statuses for code in s}


def test_a_released_slot_is_given_back_without_a_warning(postgres_dsn, caplog):
    limiter = in_flight_limiter(lambda: psycopg.connect(postgres_dsn), _credential(), 1)
    try:
        with caplog.at_level("WARNING", logger="pogo_invoiced_sync.clients.shared_limits"), limiter.slot():
            pass

        assert [r.getMessage() for r in caplog.records] == []
    finally:
        limiter.close()


def test_a_thread_keeping_its_in_flight_slot_takes_it_from_the_database_once_for_consecutive_requests(postgres_dsn):
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    credential = _credential()
    limiter = in_flight_limiter(connect, credential, 2)
    try:
        with limiter.keep():
            with limiter.slot():
                first = [s["holder"] for s in slot_state(connect, credential) if s["holder"]]
            with limiter.slot():
                second = [s["holder"] for s in slot_state(connect, credential) if s["holder"]]
    finally:
        limiter.close()

    assert len(first) == 1
    assert second == first  # the same holder: no release and take between the two requests


def test_kept_in_flight_slots_are_all_free_once_the_keep_scope_ends(postgres_dsn):
    connect = lambda: psycopg.connect(postgres_dsn)  # noqa: E731
    credential = _credential()

    keep_slots_in_threads(postgres_dsn, credential, 3, 3, 4, 0.01)

    assert [s["holder"] for s in slot_state(connect, credential)] == [None, None, None]


def test_processes_keeping_their_in_flight_slots_never_hold_more_than_the_limit_at_once(postgres_dsn):
    credential = "shared-keep-" + _credential()
    results = in_parallel(keep_slots_in_threads, [(postgres_dsn, credential, 3, 3, 8, 0.05)] * 3)

    spans = [span for spans in results for span in spans]
    assert len(spans) == 72
    assert max_overlap(spans) <= 3
