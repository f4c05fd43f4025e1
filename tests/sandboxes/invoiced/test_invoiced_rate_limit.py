"""The concurrency limiter: more than 20 requests in flight per API key get 429 without Retry-After."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests


def burst(sandboxes, count: int) -> list[requests.Response]:
    """``count`` simultaneous GETs, each held in flight by the latency fault."""
    auth = (sandboxes.settings.invoiced_api_key, "")

    def call(_):
        return requests.get(f"{sandboxes.invoiced_url}/customers", auth=auth, timeout=30)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def test_more_than_20_requests_in_flight_get_429_rate_limit_error(sandboxes):
    sandboxes.invoiced.faults(latency_ms=1500)  # long enough for all 26 to be in flight at once
    responses = burst(sandboxes, 26)
    limited = [r for r in responses if r.status_code == 429]
    assert sum(r.status_code == 200 for r in responses) == 20 and len(limited) == 6
    assert limited[0].json() == {"type": "rate_limit_error", "message": "Too many concurrent requests! You can only "
                                 "make 20 concurrent requests at a time."}
    assert all("Retry-After" not in r.headers for r in limited)


def test_the_limit_can_be_lowered_through_configure(sandboxes):
    sandboxes.invoiced.configure(max_in_flight=3)
    sandboxes.invoiced.faults(latency_ms=1000)
    responses = burst(sandboxes, 5)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 429, 429]


def test_a_limit_of_zero_switches_the_limiter_off(sandboxes):
    assert sandboxes.invoiced.configure(max_in_flight=0)["max_in_flight"] == 0
    sandboxes.invoiced.faults(latency_ms=400)
    assert all(r.status_code == 200 for r in burst(sandboxes, 25))


def test_requests_with_a_wrong_key_do_not_use_up_the_limit(sandboxes):
    sandboxes.invoiced.configure(max_in_flight=1)
    sandboxes.invoiced.faults(latency_ms=300)
    url = f"{sandboxes.invoiced_url}/customers"
    with ThreadPoolExecutor(4) as pool:
        wrong = [pool.submit(requests.get, url, auth=("wrong-key-1", ""), timeout=30) for _ in range(3)]
        right = pool.submit(requests.get, url, auth=(sandboxes.settings.invoiced_api_key, ""), timeout=30)
        assert right.result().status_code == 200 and [w.result().status_code for w in wrong] == [401] * 3
