"""InvoicedClient against the Invoiced sandbox over real HTTP."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from pogo_invoiced_sync.clients import (
    AmbiguousWriteError,
    AuthenticationError,
    PermanentApiError,
)

from .conftest import FAST


def routes(counters: dict, method: str, path: str) -> int:
    """Calls to one route, e.g. ``GET /customers``."""
    return counters["routes"].get(f"{method} {path}", 0)


def statuses(counters: dict, method: str, path: str) -> dict:
    """Outcomes of one route by status."""
    return counters["statuses"].get(f"{method} {path}", {})


def test_paging_follows_link_next_through_250_customers_in_three_calls(invoiced, sandboxes):
    sandboxes.invoiced.seed(companies=250)
    pages = list(invoiced.iter_pages("customers"))
    assert [len(p) for p in pages] == [100, 100, 50]
    assert len({c["id"] for page in pages for c in page}) == 250
    assert routes(sandboxes.invoiced.counters(), "GET", "/customers") == 3


def test_bracket_filters_and_metadata_filters_reach_the_api(invoiced, sandboxes):
    wanted = invoiced.create("customers", {"name": "Wanted", "number": "CUST-W1", "metadata": {"external_id": "p-1"}})
    invoiced.create("customers", {"name": "Other", "number": "CUST-O1", "metadata": {"external_id": "p-2"}})
    by_number = [c["id"] for page in invoiced.iter_pages("customers", {"filter[number]": "CUST-W1"}) for c in page]
    by_metadata = [
        c["id"] for page in invoiced.iter_pages("customers", {"metadata": {"external_id": "p-1"}}) for c in page
    ]
    assert by_number == by_metadata == [wanted["id"]]


def test_incremental_listing_returns_customers_updated_after_since_oldest_first(invoiced, sandboxes):
    first = invoiced.create("customers", {"name": "First"})
    since = first["updated_at"]
    while int(time.time()) <= since:  # second-resolution timestamps
        time.sleep(0.05)
    second = invoiced.create("customers", {"name": "Second"})
    third = invoiced.update(f"customers/{first['id']}", {"name": "First, renamed"})
    changed = [c["id"] for page in invoiced.iter_changed("customers", since) for c in page]
    assert set(changed) == {second["id"], third["id"]}
    assert [c["id"] for page in invoiced.iter_changed("customers", None) for c in page] != []


def test_create_with_the_same_idempotency_key_twice_makes_one_customer(invoiced, sandboxes):
    key = uuid.uuid4().hex
    one = invoiced.create("customers", {"name": "Once"}, idempotency_key=key)
    two = invoiced.create("customers", {"name": "Once"}, idempotency_key=key)
    assert one["id"] == two["id"]
    assert len(sandboxes.invoiced.records("customers")) == 1


def test_update_get_and_delete_round_trip(invoiced, sandboxes):
    created = invoiced.create("customers", {"name": "Round Trip"})
    assert invoiced.update(f"customers/{created['id']}", {"city": "Oslo"})["city"] == "Oslo"
    assert invoiced.get(f"customers/{created['id']}")["city"] == "Oslo"
    assert invoiced.delete(f"customers/{created['id']}") is True
    assert invoiced.get(f"customers/{created['id']}") is None
    assert invoiced.delete(f"customers/{created['id']}") is False


def test_a_validation_error_carries_the_api_message_and_param(invoiced, sandboxes):
    with pytest.raises(PermanentApiError) as caught:
        invoiced.create("customers", {"email": "not-an-email", "name": "X"})
    assert caught.value.status == 400
    assert "(param: email)" in str(caught.value)


def test_a_429_without_retry_after_is_retried_with_backoff(invoiced, sandboxes):
    sandboxes.invoiced.faults(burst_429=3)
    assert list(invoiced.iter_pages("customers")) == []
    assert statuses(sandboxes.invoiced.counters(), "GET", "/customers") == {"429": 3, "200": 1}
    assert invoiced.stats["retries"] == 3


def test_a_post_is_not_repeated_on_5xx_unless_the_caller_says_it_is_safe(invoiced, sandboxes):
    sandboxes.invoiced.faults(error_rate=1.0, methods=["POST"])
    with pytest.raises(AmbiguousWriteError):
        invoiced.create("customers", {"name": "Once"})
    assert routes(sandboxes.invoiced.counters(), "POST", "/customers") == 1


def test_a_post_with_an_idempotency_key_marked_safe_to_repeat_is_repeated_on_5xx(invoiced, sandboxes):
    sandboxes.invoiced.faults(error_rate=0.5, seed=1, methods=["POST"])  # rolls: fail, pass
    invoiced.create("customers", {"name": "Twice"}, idempotency_key=uuid.uuid4().hex, safe_to_repeat=True)
    assert statuses(sandboxes.invoiced.counters(), "POST", "/customers") == {"503": 1, "201": 1}
    assert len(sandboxes.invoiced.records("customers")) == 1


def test_a_dropped_connection_on_a_read_is_retried(invoiced, sandboxes):
    sandboxes.invoiced.faults(drop_rate=0.5, seed=1)  # rolls: drop, pass
    assert invoiced.get("customers/1") is None
    assert statuses(sandboxes.invoiced.counters(), "GET", "/customers/{id}") == {"dropped": 1, "404": 1}


def test_thirty_threads_stay_under_twenty_requests_in_flight(invoiced_env, sandboxes):
    invoiced_env(max_in_flight=19)
    sandboxes.invoiced.configure(max_in_flight=20)
    sandboxes.invoiced.faults(latency_ms=150)
    client = invoiced_env.client(**FAST)
    with ThreadPoolExecutor(30) as pool:
        list(pool.map(lambda i: client.get(f"customers/{i}"), range(60)))
    counters = sandboxes.invoiced.counters()
    assert statuses(counters, "GET", "/customers/{id}") == {"404": 60}
    assert client.stats["retries"] == 0
    assert client.stats["limiter_wait_seconds"] > 0


def test_a_wrong_api_key_raises_authentication_error_without_the_key(invoiced_env, sandboxes, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    invoiced_env(api_key="wrong-api-key-0123456789")
    with pytest.raises(AuthenticationError) as caught:
        invoiced_env.client(**FAST).get("customers/1")
    assert caught.value.status == 401
    assert "wrong-api-key-0123456789" not in str(caught.value) + caplog.text + "".join(capsys.readouterr())


def test_a_read_timeout_on_a_read_is_retried(invoiced_env, sandboxes):
    invoiced_env(timeout=0.5)
    sandboxes.invoiced.faults(hang_rate=0.5, hang_seconds=2, seed=1)  # rolls: hang, pass
    assert invoiced_env.client(**FAST).get("customers/1") is None
    assert statuses(sandboxes.invoiced.counters(), "GET", "/customers/{id}") == {"hung": 1, "404": 1}


def test_a_post_that_timed_out_is_not_repeated(invoiced_env, sandboxes):
    invoiced_env(timeout=0.5)
    sandboxes.invoiced.faults(hang_rate=1.0, hang_seconds=1, methods=["POST"])
    with pytest.raises(AmbiguousWriteError):
        invoiced_env.client(**FAST).create("customers", {"name": "Slow"})
    assert routes(sandboxes.invoiced.counters(), "POST", "/customers") == 1
