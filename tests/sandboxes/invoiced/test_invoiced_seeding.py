"""Seeding: deterministic Nordic data, invoices in every state for seeded customers, fast at 100,000."""
from __future__ import annotations



def test_seed_returns_the_counts(sandboxes):
    assert sandboxes.invoiced.seed(companies=3, persons=2, invoices=4) == \
        {"customers": 5, "companies": 3, "persons": 2, "contacts": 3, "invoices": 4}


def test_the_same_spec_gives_the_same_records(sandboxes):
    sandboxes.invoiced.seed(companies=20, persons=10, invoices=50)
    first = {e: sandboxes.invoiced.records(e) for e in ("customers", "contacts", "invoices")}
    sandboxes.invoiced.reset()
    sandboxes.invoiced.seed(companies=20, persons=10, invoices=50)
    assert {e: sandboxes.invoiced.records(e) for e in ("customers", "contacts", "invoices")} == first


def test_another_seed_gives_other_records(sandboxes):
    sandboxes.invoiced.seed(companies=5, seed=2)
    first = [c["name"] for c in sandboxes.invoiced.records("customers")]
    sandboxes.invoiced.reset()
    sandboxes.invoiced.seed(companies=5, seed=3)
    assert [c["name"] for c in sandboxes.invoiced.records("customers")] != first


def test_seeded_customers_look_nordic_and_valid(api, sandboxes):
    sandboxes.invoiced.seed(companies=10, persons=10)
    customers = api.get("/customers").json()
    assert {c["type"] for c in customers} == {"company", "person"}
    assert {c["country"] for c in customers} <= {"NO", "SE", "DK", "FI"}
    assert all(c["currency"] in {"nok", "sek", "dkk", "eur"} and c["number"].startswith("CUST-") for c in customers)


def test_seeded_invoices_reference_seeded_customers_and_cover_drafts_and_issued_ones(api, sandboxes):
    sandboxes.invoiced.seed(companies=5, persons=5, invoices=200)
    customer_ids = {c["id"] for c in sandboxes.invoiced.records("customers")}
    invoices = sandboxes.invoiced.records("invoices")
    assert {i["customer"] for i in invoices} <= customer_ids
    assert {"draft", "paid", "voided", "past_due"} <= {i["status"] for i in invoices}
    assert all(i["items"] and i["total"] > 0 for i in invoices)


def test_the_api_continues_numbering_after_seeded_records(api, sandboxes):
    sandboxes.invoiced.seed(companies=3)
    assert api.create("/customers", {"name": "New"})["number"] == "CUST-0004"


def test_inspect_returns_one_record_by_id(sandboxes, api):
    created = api.create("/customers", {"name": "Only me"})
    api.create("/customers", {"name": "Not me"})
    assert [c["name"] for c in sandboxes.invoiced.records("customers", id=created["id"])] == ["Only me"]


def test_reset_empties_everything_and_restores_the_settings(sandboxes):
    sandboxes.invoiced.seed(companies=3, invoices=3)
    sandboxes.invoiced.configure(max_in_flight=2)
    sandboxes.invoiced.reset()
    assert sandboxes.invoiced.records("customers") == sandboxes.invoiced.records("invoices") == []
    assert sandboxes.invoiced.configure()["max_in_flight"] == 20


def test_100000_customers_can_be_seeded_at_once(sandboxes):
    # Speed is the benchmark's business (bench/, docs/benchmark.md), not a test's.
    assert sandboxes.invoiced.seed(persons=100_000)["customers"] == 100_000
