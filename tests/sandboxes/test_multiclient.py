"""Opt-in multi-client sandboxes: several PowerOffice Go clients under one subscription key, several Invoiced accounts.

Each client key (same application key) gets tokens bound to its client and data of its own; the 10 requests/s stay
per subscription key across all clients. Each extra Invoiced API key is an account of its own.
"""

from __future__ import annotations

import base64

import pytest
import requests

from sandboxes.process import SandboxProcess, free_port
from sandboxes.settings import SandboxSettings

SUBSCRIPTION = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def process():
    settings = SandboxSettings(
        pogo_port=free_port(),
        invoiced_port=free_port(),
        pogo_application_key="app",
        pogo_client_key="client-a",
        pogo_subscription_key=SUBSCRIPTION,
        invoiced_api_key="account-a",
        pogo_extra_client_keys=("client-b",),
        invoiced_extra_api_keys=("account-b",),
    )
    proc = SandboxProcess(settings).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _clean(process):
    process.reset()


def _token(process, client_key: str) -> requests.Response:
    basic = base64.b64encode(f"app:{client_key}".encode()).decode()
    return requests.post(
        f"{process.pogo_url}/OAuth/Token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}", "Ocp-Apim-Subscription-Key": SUBSCRIPTION},
        timeout=30,
    )


def _pogo(process, token: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Ocp-Apim-Subscription-Key": SUBSCRIPTION}
    return requests.request(method, f"{process.pogo_url}/v2{path}", headers=headers, timeout=30, **kwargs)


def test_each_pogo_client_key_sees_only_its_own_data(process) -> None:
    process.pogo.seed(companies=2)
    process.pogo.seed(companies=1, persons=1, client="client-b")
    a, b = (_token(process, k).json()["access_token"] for k in ("client-a", "client-b"))
    assert len(_pogo(process, a, "GET", "/Customers").json()) == 2
    assert len(_pogo(process, b, "GET", "/Customers").json()) == 2
    created = _pogo(process, b, "POST", "/Customers", json={"Name": "Only B AS"})
    assert created.status_code == 201, created.text
    assert len(process.pogo.records("customers", client="client-b")) == 3
    assert len(process.pogo.records("customers")) == 2
    names_a = {c["Name"] for c in _pogo(process, a, "GET", "/Customers").json()}
    assert "Only B AS" not in names_a
    info_a, info_b = (_pogo(process, t, "GET", "/ClientIntegrationInformation").json() for t in (a, b))
    assert info_a["ClientId"] != info_b["ClientId"]


def test_unknown_pogo_client_key_is_refused(process) -> None:
    assert _token(process, "client-c").status_code == 400


def test_pogo_rate_limit_is_shared_by_all_clients_of_the_subscription(process) -> None:
    a, b = (_token(process, k).json()["access_token"] for k in ("client-a", "client-b"))
    process.pogo.configure(rate_limit_per_second=2)
    process.pogo.clear_counters()
    # Alternating clients: each alone stays at or under 2 calls in any second only if the limit were per client.
    statuses = [_pogo(process, (a, b)[i % 2], "GET", "/Customers").status_code for i in range(8)]
    assert 429 in statuses, statuses
    assert sum(n for s, n in _statuses(process).items() if s == "429") == statuses.count(429)


def _statuses(process) -> dict[str, int]:
    totals: dict[str, int] = {}
    for by_status in process.pogo.counters()["statuses"].values():
        for status, n in by_status.items():
            totals[status] = totals.get(status, 0) + n
    return totals


def test_each_invoiced_api_key_is_an_account_of_its_own(process) -> None:
    process.invoiced.seed(companies=2)
    created = requests.post(
        f"{process.invoiced_url}/customers", auth=("account-b", ""), json={"name": "Only B AS"}, timeout=30
    )
    assert created.status_code == 201, created.text
    listed_a = requests.get(f"{process.invoiced_url}/customers", auth=("account-a", ""), timeout=30).json()
    listed_b = requests.get(f"{process.invoiced_url}/customers", auth=("account-b", ""), timeout=30).json()
    assert len(listed_a) == 2
    assert [c["name"] for c in listed_b] == ["Only B AS"]
    assert len(process.invoiced.records("customers", account="account-b")) == 1
    wrong = requests.get(f"{process.invoiced_url}/customers", auth=("account-c", ""), timeout=30)
    assert wrong.status_code == 401


def _names(records: list[dict], field: str) -> list[str]:
    return sorted(r[field] for r in records)


def test_pogo_edits_between_pages_land_in_the_data_of_the_client_whose_listing_was_paged(process) -> None:
    process.pogo.seed(companies=3)
    process.pogo.seed(companies=3, client="client-b")
    before_a = _names(process.pogo.records("customers"), "Name")
    process.pogo.between_pages(
        {"list": "customers", "after_page": 1, "steps": [{"first": 1, "append": {"Name": " !"}}]}
    )
    b = _token(process, "client-b").json()["access_token"]

    page = _pogo(process, b, "GET", "/Customers", params={"PageSize": 2, "PageNumber": 1}).json()

    edited = {r["Id"]: r["Name"] for r in process.pogo.records("customers", client="client-b")}
    assert edited[page[0]["Id"]] == page[0]["Name"] + " !"
    assert _names(process.pogo.records("customers"), "Name") == before_a


def test_a_pogo_between_pages_trigger_naming_a_client_fires_only_on_that_clients_listing(process) -> None:
    process.pogo.seed(companies=3)
    process.pogo.seed(companies=3, client="client-b")
    before_a = _names(process.pogo.records("customers"), "Name")
    trigger = {
        "list": "customers",
        "after_page": 1,
        "client": "client-b",
        "steps": [{"first": 2, "append": {"Name": " !"}}],
    }
    process.pogo.between_pages(trigger)
    a, b = (_token(process, k).json()["access_token"] for k in ("client-a", "client-b"))

    _pogo(process, a, "GET", "/Customers", params={"PageSize": 2, "PageNumber": 1})
    pending = process.pogo._call("GET", "between_pages")["triggers"]
    _pogo(process, b, "GET", "/Customers", params={"PageSize": 2, "PageNumber": 1})

    assert [t["client"] for t in pending] == ["client-b"]
    assert sum(r["Name"].endswith(" !") for r in process.pogo.records("customers", client="client-b")) == 2
    assert _names(process.pogo.records("customers"), "Name") == before_a


def test_a_between_pages_trigger_naming_an_unknown_client_is_refused(process) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        process.pogo.between_pages({"list": "customers", "client": "client-c", "steps": []})

    assert refused.value.response.status_code == 400


def test_a_pogo_edit_now_can_target_one_client(process) -> None:
    process.pogo.seed(companies=1)
    process.pogo.seed(companies=1, client="client-b")
    (record,) = process.pogo.records("customers", client="client-b")

    process.pogo.edit("customers", {"id": record["Id"], "set": {"Name": "Edited B AS"}}, client="client-b")

    assert [r["Name"] for r in process.pogo.records("customers", client="client-b")] == ["Edited B AS"]
    assert [r["Name"] for r in process.pogo.records("customers")] != ["Edited B AS"]


def test_an_invoiced_between_pages_trigger_naming_an_account_edits_only_that_accounts_data(process) -> None:
    process.invoiced.seed(companies=3)
    process.invoiced.seed(companies=3, account="account-b")
    before_a = _names(process.invoiced.records("customers"), "name")
    trigger = {
        "list": "customers",
        "after_page": 1,
        "account": "account-b",
        "steps": [{"first": 1, "append": {"name": " !"}}],
    }
    process.invoiced.between_pages(trigger)

    requests.get(f"{process.invoiced_url}/customers", auth=("account-a", ""), params={"per_page": 2}, timeout=30)
    page = requests.get(
        f"{process.invoiced_url}/customers", auth=("account-b", ""), params={"per_page": 2}, timeout=30
    ).json()

    edited = {r["id"]: r["name"] for r in process.invoiced.records("customers", account="account-b")}
    assert edited[page[0]["id"]] == page[0]["name"] + " !"
    assert _names(process.invoiced.records("customers"), "name") == before_a
