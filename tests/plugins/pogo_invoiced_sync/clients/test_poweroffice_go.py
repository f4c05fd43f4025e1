"""PowerOfficeGoClient against the PowerOffice Go sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from pogo_invoiced_sync.clients import (
    AmbiguousWriteError,
    AuthenticationError,
    PermanentApiError,
    PermissionDeniedError,
    PowerOfficeGoClient,
    RetryableApiError,
)

from .conftest import FAST

CUSTOMERS = "/v2/Customers"


def routes(counters: dict, method: str, path: str) -> int:
    """Calls to one route, e.g. ``GET /v2/Customers``."""
    return counters["routes"].get(f"{method} {path}", 0)


def statuses(counters: dict, method: str, path: str) -> dict:
    """Outcomes of one route by status."""
    return counters["statuses"].get(f"{method} {path}", {})


def new_customer(**fields) -> dict:
    """A minimal valid customer body with a unique external reference."""
    return {
        "Name": "Fjord Test AS",
        "InvoiceDeliveryType": "Print",
        "ExternalImportReference": uuid.uuid4().hex[:20],
        **fields,
    }


def test_a_token_is_requested_once_and_reused_for_later_calls(pogo, sandboxes):
    pogo.get("Customers/1")
    pogo.get("Customers/2")
    counters = sandboxes.pogo.counters()
    assert routes(counters, "POST", "/OAuth/Token") == 1
    assert routes(counters, "GET", "/v2/Customers/{id}") == 2


def test_a_token_near_expiry_is_renewed_before_the_call(pogo, sandboxes):
    sandboxes.pogo.configure(token_ttl_seconds=2)
    pogo.get("Customers/1")
    time.sleep(1.1)  # past half-life of a 2 s token
    pogo.get("Customers/1")
    counters = sandboxes.pogo.counters()
    assert routes(counters, "POST", "/OAuth/Token") == 2
    assert "401" not in statuses(counters, "GET", "/v2/Customers/{id}")


def test_a_token_refused_with_401_is_renewed_once_and_the_call_repeated(pogo, sandboxes):
    sandboxes.pogo.configure(token_ttl_seconds=1)
    pogo.get("Customers/1")
    pogo._token_cache().renew_at = time.monotonic() + 600  # our cache believes it valid, the server will not
    time.sleep(1.1)
    assert pogo.get("Customers/1") is None
    counters = sandboxes.pogo.counters()
    assert statuses(counters, "GET", "/v2/Customers/{id}") == {"404": 2, "401": 1}
    assert routes(counters, "POST", "/OAuth/Token") == 2
    assert pogo.stats["auth_renewals"] == 1


def test_a_call_still_refused_after_one_renewal_raises_authentication_error(pogo, sandboxes, monkeypatch):
    monkeypatch.setattr(
        PowerOfficeGoClient, "_request_token", lambda self: ("not-a-valid-token", time.monotonic() + 600)
    )
    with pytest.raises(AuthenticationError) as caught:
        pogo.get("Customers/1")
    assert caught.value.status == 401
    assert routes(sandboxes.pogo.counters(), "GET", "/v2/Customers/{id}") == 2


def test_a_403_is_a_permanent_error_naming_the_missing_privilege_without_renewing_the_token(pogo, sandboxes):
    sandboxes.pogo.configure(invalid_privileges=["Customer_Full"])
    with pytest.raises(PermissionDeniedError) as refused:
        pogo.create("Customers", new_customer(), safe_to_repeat=True)
    assert isinstance(refused.value, PermanentApiError)
    assert refused.value.status == 403
    assert "Customer_Full" in str(refused.value)
    assert "module" in str(refused.value)
    counters = sandboxes.pogo.counters()
    assert routes(counters, "POST", CUSTOMERS) == 1  # neither repeated nor retried after a new token
    assert routes(counters, "POST", "/OAuth/Token") == 1
    assert pogo.stats["auth_renewals"] == 0


def test_wrong_client_key_raises_authentication_error_with_the_api_message(pogo_env, sandboxes):
    pogo_env(client_key="wrong-client-key-1234")
    with pytest.raises(AuthenticationError) as caught:
        pogo_env.client(**FAST).get("Customers/1")
    assert "invalid_client" in str(caught.value)
    assert "wrong-client-key-1234" not in str(caught.value)


def test_paging_reads_12000_customers_in_three_calls_of_5000(pogo, sandboxes):
    sandboxes.pogo.seed(companies=12000)
    pages = list(pogo.iter_pages("Customers", page_size=5000))
    assert [len(p) for p in pages] == [5000, 5000, 2000]
    assert len({c["Id"] for page in pages for c in page}) == 12000
    assert routes(sandboxes.pogo.counters(), "GET", CUSTOMERS) == 3


def test_paging_stops_when_x_pagination_has_no_next_page_link(pogo, sandboxes):
    sandboxes.pogo.seed(companies=10)
    pages = list(pogo.iter_pages("Customers", page_size=5))
    assert [len(p) for p in pages] == [5, 5]
    assert routes(sandboxes.pogo.counters(), "GET", CUSTOMERS) == 2


def test_an_empty_list_answered_with_204_yields_no_pages(pogo, sandboxes):
    assert list(pogo.iter_pages("Customers")) == []
    assert statuses(sandboxes.pogo.counters(), "GET", CUSTOMERS) == {"204": 1}


def test_incremental_listing_returns_only_customers_changed_after_since(pogo, sandboxes):
    old = pogo.create("Customers", new_customer(Name="Old AS"))
    time.sleep(0.05)
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    fresh = pogo.create("Customers", new_customer(Name="Fresh AS"))
    changed = [c["Id"] for page in pogo.iter_changed("Customers", since) for c in page]
    everything = [c["Id"] for page in pogo.iter_changed("Customers", None) for c in page]
    assert changed == [fresh["Id"]]
    assert set(everything) == {old["Id"], fresh["Id"]}


def test_patch_with_a_nested_field_changes_only_that_field(pogo, sandboxes):
    created = pogo.create(
        "Customers",
        new_customer(
            MailAddress={"AddressLine1": "Storgata 1", "City": "Bergen", "ZipCode": "5003", "CountryCode": "NO"}
        ),
    )
    updated = pogo.patch(f"Customers/{created['Id']}", {"Name": "Renamed AS", "MailAddress.City": "Oslo"})
    assert updated["Name"] == "Renamed AS"
    assert updated["MailAddress"]["City"] == "Oslo"
    assert updated["MailAddress"]["AddressLine1"] == "Storgata 1"
    assert routes(sandboxes.pogo.counters(), "PATCH", "/v2/Customers/{id}") == 1


def test_get_returns_none_for_a_missing_customer(pogo, sandboxes):
    assert pogo.get("Customers/987654") is None


def test_delete_returns_false_when_the_customer_is_already_gone(pogo, sandboxes):
    created = pogo.create("Customers", new_customer())
    assert pogo.delete(f"Customers/{created['Id']}") is True
    assert pogo.delete(f"Customers/{created['Id']}") is False


def test_a_burst_of_429_is_retried_after_the_retry_after_seconds(pogo, sandboxes):
    sandboxes.pogo.faults(burst_429=2, retry_after=0.3, path_pattern="^/v2/")
    started = time.monotonic()
    assert list(pogo.iter_pages("Customers")) == []
    assert time.monotonic() - started >= 0.6
    assert statuses(sandboxes.pogo.counters(), "GET", CUSTOMERS) == {"429": 2, "204": 1}
    assert pogo.stats["retries"] == 2


def test_a_5xx_on_a_read_is_retried_until_it_succeeds(pogo, sandboxes):
    sandboxes.pogo.faults(error_rate=0.5, seed=7, path_pattern="^/v2/")  # rolls: fail, fail, pass
    assert list(pogo.iter_pages("Customers")) == []
    assert statuses(sandboxes.pogo.counters(), "GET", CUSTOMERS) == {"503": 2, "204": 1}


def test_a_read_that_keeps_failing_raises_retryable_error_after_all_attempts(pogo_env, sandboxes):
    sandboxes.pogo.faults(error_rate=1.0, path_pattern="^/v2/")
    with pytest.raises(RetryableApiError) as caught:
        pogo_env.client(max_attempts=3, **FAST).get("Customers/1")
    assert caught.value.status == 503
    assert "3 attempts" in str(caught.value)


def test_a_dropped_connection_on_a_read_is_retried(pogo, sandboxes):
    sandboxes.pogo.faults(drop_rate=0.5, seed=1, path_pattern="^/v2/")  # rolls: drop, pass
    assert list(pogo.iter_pages("Customers")) == []
    assert statuses(sandboxes.pogo.counters(), "GET", CUSTOMERS) == {"dropped": 1, "204": 1}


def test_a_non_json_body_on_a_read_is_retried(pogo, sandboxes):
    sandboxes.pogo.seed(companies=3)
    sandboxes.pogo.faults(malformed_rate=0.5, seed=1, path_pattern="^/v2/")  # rolls: malformed, fine
    pages = list(pogo.iter_pages("Customers"))
    assert [len(p) for p in pages] == [3]
    assert routes(sandboxes.pogo.counters(), "GET", CUSTOMERS) == 2


def test_a_post_is_retried_on_429(pogo, sandboxes):
    sandboxes.pogo.faults(burst_429=2, retry_after=0.05, path_pattern="^/v2/Customers", methods=["POST"])
    pogo.create("Customers", new_customer())
    assert statuses(sandboxes.pogo.counters(), "POST", CUSTOMERS) == {"429": 2, "201": 1}
    assert len(sandboxes.pogo.records("customers")) == 1


def test_a_post_is_not_repeated_on_5xx_unless_the_caller_says_it_is_safe(pogo, sandboxes):
    sandboxes.pogo.faults(error_rate=1.0, path_pattern="^/v2/Customers", methods=["POST"])
    with pytest.raises(AmbiguousWriteError) as caught:
        pogo.create("Customers", new_customer())
    assert caught.value.status == 503
    assert routes(sandboxes.pogo.counters(), "POST", CUSTOMERS) == 1


def test_a_post_marked_safe_to_repeat_is_repeated_on_5xx(pogo, sandboxes):
    sandboxes.pogo.faults(error_rate=0.5, seed=1, path_pattern="^/v2/Customers", methods=["POST"])  # fail, pass
    pogo.create("Customers", new_customer(), safe_to_repeat=True)
    assert statuses(sandboxes.pogo.counters(), "POST", CUSTOMERS) == {"503": 1, "201": 1}


def test_a_post_whose_connection_dropped_after_sending_is_not_repeated(pogo, sandboxes):
    sandboxes.pogo.faults(drop_after_rate=1.0, path_pattern="^/v2/Customers", methods=["POST"])
    with pytest.raises(AmbiguousWriteError):
        pogo.create("Customers", new_customer())
    assert routes(sandboxes.pogo.counters(), "POST", CUSTOMERS) == 1
    assert len(sandboxes.pogo.records("customers")) == 1  # it was applied: only a lookup can tell


def test_a_validation_error_carries_the_problem_details_title_and_detail(pogo, sandboxes):
    with pytest.raises(PermanentApiError) as caught:
        pogo.create("Customers", {"InvoiceDeliveryType": "Print"})  # no Name
    assert caught.value.status == 400
    assert "validation" in caught.value.message.lower()
    assert "name" in caught.value.message.lower()
    assert routes(sandboxes.pogo.counters(), "POST", CUSTOMERS) == 1


def test_eight_threads_stay_under_ten_requests_per_second(pogo, sandboxes):
    sandboxes.pogo.configure(rate_limit_per_second=10)
    pogo.get("Customers/1")  # token first, so it does not count against the measured window
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: pogo.get(f"Customers/{i}"), range(30)))
    elapsed = time.monotonic() - started
    counters = sandboxes.pogo.counters()
    assert "429" not in statuses(counters, "GET", "/v2/Customers/{id}")
    assert routes(counters, "GET", "/v2/Customers/{id}") == 31
    assert elapsed >= 2.0  # 30 calls at <= 10 per second
    assert pogo.stats["calls"]["GET"] == 31
    assert pogo.stats["limiter_wait_seconds"] > 0
