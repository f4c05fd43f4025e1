"""Seeding, inspection, counters and large-list performance of the PowerOffice Go sandbox."""
from __future__ import annotations

import json

VOLATILE = {"LastChangedDateTimeOffset", "ContactCreatedDateTimeOffset", "CustomerCreatedDateTimeOffset",
            "CreatedDateTimeOffset"}


def stable(records: list[dict]) -> list[dict]:
    """Records without their timestamps, which come from the real clock."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(records)


def test_seeding_returns_counts_and_the_records_show_through_the_api(pogo):
    counts = pogo.admin.seed(companies=4, persons=3, contact_persons_per_company=2, sales_orders=5)
    assert (counts["customers"], counts["contact_persons"], counts["sales_orders"]) == (7, 8, 5)
    assert len(pogo.get("/Customers").json()) == 7
    assert len(pogo.get("/ContactPersons").json()) == 8
    assert len(pogo.get("/SalesOrders").json()) == 5


def test_seeding_is_deterministic(sandboxes):
    spec = {"companies": 20, "persons": 10, "contact_persons_per_company": 1, "sales_orders": 30, "seed": 7}
    first = {}
    for attempt in range(2):
        sandboxes.pogo.reset()
        sandboxes.pogo.seed(**spec)
        snapshot = {e: stable(sandboxes.pogo.records(e)) for e in ("customers", "contact_persons", "sales_orders")}
        if attempt == 0:
            first = snapshot
    assert snapshot == first


def test_a_different_seed_gives_different_data(sandboxes):
    sandboxes.pogo.seed(companies=5, seed=1)
    one = stable(sandboxes.pogo.records("customers"))
    sandboxes.pogo.reset()
    sandboxes.pogo.seed(companies=5, seed=2)
    assert stable(sandboxes.pogo.records("customers")) != one


def test_seeded_orders_reference_seeded_customers_with_one_to_four_lines(sandboxes):
    sandboxes.pogo.seed(companies=10, persons=10, sales_orders=50)
    customer_ids = {c["Id"] for c in sandboxes.pogo.records("customers")}
    orders = sandboxes.pogo.records("sales_orders")
    assert all(o["CustomerId"] in customer_ids and 1 <= o["LineCount"] <= 4 for o in orders)
    assert any(o["CustomerReferenceContactPersonId"] for o in orders)
    assert {o["CurrencyCode"] for o in orders} <= {"NOK", "SEK", "DKK", "EUR", "USD"}


def test_seeded_records_pass_the_api_validation_rules(pogo):
    pogo.admin.seed(companies=3, persons=2)
    customer = pogo.get("/Customers").json()[0]
    patched = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/PhoneNumber", "value": "1"}])
    assert patched.status_code == 200, patched.text


def test_records_can_be_inspected_by_id(sandboxes):
    sandboxes.pogo.seed(companies=3)
    wanted = sandboxes.pogo.records("customers")[1]
    assert sandboxes.pogo.records("customers", id=wanted["Id"]) == [wanted]


def test_reset_empties_the_store_and_restores_settings(sandboxes):
    sandboxes.pogo.seed(companies=3)
    sandboxes.pogo.configure(token_ttl_seconds=5, rate_limit_per_second=0, invalid_privileges=["Customer_Full"])
    sandboxes.pogo.reset()
    assert sandboxes.pogo.records("customers") == []
    assert sandboxes.pogo.configure() == {"token_ttl_seconds": 1200, "rate_limit_per_second": 10,
                                          "invalid_privileges": []}


def test_counters_count_write_calls_by_method_and_path(pogo):
    pogo.admin.clear_counters()
    customer = pogo.create_customer()
    pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/Name", "value": "Nytt AS"}])
    pogo.get("/Customers")
    counters = pogo.admin.counters()
    assert counters["routes"]["POST /v2/Customers"] == 1
    assert counters["routes"]["PATCH /v2/Customers/{id}"] == 1
    assert counters["writes"] == 2
    assert counters["statuses"]["POST /v2/Customers"] == {"201": 1}


def test_100000_seeded_customers_page_out_in_full(pogo):
    # Speed is the benchmark's business (bench/, docs/benchmark.md), not a test's.
    pogo.admin.seed(companies=60000, persons=40000, contact_persons_per_company=0)
    total, page = 0, 1
    while True:
        response = pogo.get("/Customers", PageSize=5000, PageNumber=page, customerNos="10000-", Fields="Id,Number")
        if response.status_code == 204:
            break
        total += len(response.json())
        page += 1
    assert total == 100000
    assert json.loads(response.headers["X-Pagination"])["totalPages"] == 20


def test_persons_without_address_are_seeded_with_a_null_mail_address(sandboxes):
    counts = sandboxes.pogo.seed(persons=1, persons_without_address=2)
    assert counts["persons"] == 3
    people = sandboxes.pogo.records("customers")
    assert [p["MailAddress"] is None for p in people] == [False, True, True]
    assert all(p["IsPerson"] and p["FirstName"] and p["LastName"] for p in people)
