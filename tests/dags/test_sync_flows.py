"""The three flows end to end: the DAGs run with ``dag.test()`` against the sandboxes and a real PostgreSQL."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _by_ref(records: list[dict], key) -> dict:
    out = {}
    for record in records:
        ref = key(record)
        if ref is not None:
            assert ref not in out, f"two records carry the reference {ref}"
            out[ref] = record
    return out


def _invoiced_by_pogo_id(records):
    return _by_ref(records, lambda r: (r.get("metadata") or {}).get("poweroffice_go_id"))


def _seed_both(stack, pogo: dict, invoiced: dict) -> None:
    stack.sandboxes.pogo.seed(**pogo)
    stack.sandboxes.invoiced.seed(**invoiced)


def test_the_first_run_creates_counterparts_for_all_three_flows_in_both_directions(stack):
    _seed_both(stack, {"companies": 4, "persons": 3, "sales_orders": 5}, {"companies": 2, "persons": 2, "invoices": 3})
    stack.run_all()
    pogo_customers = stack.records("poweroffice_go", "customers")
    inv_customers = stack.records("invoiced", "customers")
    assert len(pogo_customers) == len(inv_customers) == 4 + 3 + 2 + 2
    assert sorted(c["Name"] for c in pogo_customers) == sorted(c["name"] for c in inv_customers)
    assert {c["type"] for c in inv_customers if not c["metadata"]} | {"company", "person"} == {"company", "person"}
    orders, invoices = stack.records("poweroffice_go", "sales_orders"), stack.records("invoiced", "invoices")
    assert len(orders) == len(invoices) == 5 + 3
    assert all(i["draft"] for i in invoices if i.get("metadata", {}).get("poweroffice_go_id"))
    assert stack.sql("SELECT count(*) FROM {s}.links")[0][0] == 4 + 3 + 2 + 2 + 5 + 3


def test_a_person_is_created_with_its_mail_address_and_name(stack):
    stack.sandboxes.pogo.seed(persons=1)
    stack.run("customers_person")
    person = stack.records("poweroffice_go", "customers")[0]
    counterpart = stack.records("invoiced", "customers")[0]
    assert counterpart["type"] == "person"
    assert counterpart["name"] == f"{person['FirstName']} {person['LastName']}"
    address = person["MailAddress"]
    assert (counterpart["address1"], counterpart["city"], counterpart["postal_code"], counterpart["country"]) == (
        address["AddressLine1"], address["City"], address["ZipCode"], address["CountryCode"])


def test_an_edit_on_either_side_arrives_on_the_other_at_the_next_run(stack):
    _seed_both(stack, {"companies": 2}, {})
    stack.run("customers_company")
    links = dict(stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links"))
    first, second = sorted(links)
    stack.pogo.patch(f"/Customers/{first}", {"Name": "Edited in PowerOffice AS"})
    stack.invoiced.update(f"/customers/{links[second]}", {"name": "Edited in Invoiced AS"})
    stack.run("customers_company")
    assert stack.invoiced.get(f"/customers/{links[first]}")["name"] == "Edited in PowerOffice AS"
    assert stack.pogo.get(f"/Customers/{second}")["Name"] == "Edited in Invoiced AS"


def test_edits_to_different_fields_on_both_sides_both_survive(stack):
    stack.sandboxes.pogo.seed(persons=1)
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"MailAddress.City": "Tromsø"})
    stack.invoiced.update(f"/customers/{inv_id}", {"address2": "Leilighet 4"})
    stack.run("customers_person")
    pogo, inv = stack.pogo.get(f"/Customers/{pogo_id}"), stack.invoiced.get(f"/customers/{inv_id}")
    assert (pogo["MailAddress"]["City"], pogo["MailAddress"]["AddressLine2"]) == ("Tromsø", "Leilighet 4")
    assert (inv["city"], inv["address2"]) == ("Tromsø", "Leilighet 4")


def test_a_same_field_conflict_goes_to_the_latest_change_and_the_losing_value_is_logged(stack):
    stack.sandboxes.pogo.seed(companies=1)
    stack.run("customers_company")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Older Name AS"})
    import time

    time.sleep(1.1)  # Invoiced stamps changes to the second: make its edit clearly the later one
    stack.invoiced.update(f"/customers/{inv_id}", {"name": "Newer Name AS"})
    stack.run("customers_company")
    assert stack.pogo.get(f"/Customers/{pogo_id}")["Name"] == "Newer Name AS"
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Newer Name AS"
    assert stack.sql("SELECT before, after FROM {s}.sync_log WHERE operation = 'conflict'") == [
        ({"name": "Older Name AS"}, {"name": "Newer Name AS"})]


def test_an_address_only_edit_in_poweroffice_go_is_synchronised(stack):
    stack.sandboxes.pogo.seed(persons=1)
    stack.run("customers_person")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links")[0]
    before = stack.pogo.get(f"/Customers/{pogo_id}")["LastChangedDateTimeOffset"]
    stack.pogo.patch(f"/Customers/{pogo_id}", {"MailAddress.AddressLine1": "Ny gate 1"})
    assert stack.pogo.get(f"/Customers/{pogo_id}")["LastChangedDateTimeOffset"] == before  # the quirk holds
    stack.run("customers_person")
    assert stack.invoiced.get(f"/customers/{inv_id}")["address1"] == "Ny gate 1"


def test_a_run_where_nothing_changed_writes_nothing_and_our_own_writes_are_not_changes(stack):
    _seed_both(stack, {"companies": 3, "persons": 2, "sales_orders": 3}, {"companies": 2, "persons": 1, "invoices": 2})
    stack.run_all()
    stack.run_all()  # picks up our own writes of the first cycle: they must not count as changes
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    stack.run_all()
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}


def test_our_own_writes_are_not_written_back_at_the_next_run(stack):
    _seed_both(stack, {"companies": 2}, {"companies": 2})
    stack.run("customers_company")
    stack.sandboxes.pogo.clear_counters()
    stack.sandboxes.invoiced.clear_counters()
    stack.run("customers_company")
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}


def test_an_order_whose_customer_is_not_linked_waits_with_the_reason_then_syncs(stack):
    stack.sandboxes.pogo.seed(companies=1, sales_orders=1)
    stack.run("salesorders_invoices")
    assert stack.records("invoiced", "invoices") == []
    reasons = [r for (r,) in stack.sql("SELECT reason FROM {s}.sync_log WHERE operation = 'wait'")]
    assert reasons and "not linked to Invoiced yet" in reasons[0]
    assert stack.sql("SELECT count(*) FROM {s}.v_waiting")[0][0] == 1
    stack.run("customers_company")
    stack.run("customers_person")
    stack.run("salesorders_invoices")
    assert len(stack.records("invoiced", "invoices")) == 1
    assert stack.sql("SELECT count(*) FROM {s}.v_waiting")[0][0] == 0


def test_a_record_the_other_side_rejects_gets_the_reason_the_rest_syncs_and_the_next_run_retries(stack):
    stack.sandboxes.invoiced.seed(companies=2)
    bad = stack.invoiced.create("/customers", {"name": "Ugyldig Land AS", "country": "NO"})
    # The PowerOffice Go side refuses this address: an address line holds at most 200 characters there.
    stack.invoiced.update(f"/customers/{bad['id']}", {"type": "person", "name": "Kari Nordmann", "city": "Oslo",
                                                      "postal_code": "0150", "address1": "Lang gate " + "x" * 200})
    stack.run("customers_company")
    stack.run("customers_person")
    failures = stack.sql("SELECT invoiced_id, reason FROM {s}.v_failures")
    assert [f[0] for f in failures] == [str(bad["id"])]
    assert "AddressLine1" in failures[0][1]
    assert len(stack.records("poweroffice_go", "customers")) == 2
    stack.invoiced.update(f"/customers/{bad['id']}", {"address1": "Lang gate 1"})
    stack.run("customers_person")
    assert len(stack.records("poweroffice_go", "customers")) == 3


def test_dry_run_shows_the_plan_and_writes_nothing(stack):
    _seed_both(stack, {"companies": 2}, {"companies": 1})
    stack.run("customers_company", dry_run=True)
    assert stack.writes() == {"poweroffice_go": 0, "invoiced": 0}
    planned = stack.sql("SELECT direction, count(*) FROM {s}.sync_log WHERE outcome = 'planned' GROUP BY 1 ORDER BY 1")
    assert planned == [("to_invoiced", 2), ("to_poweroffice_go", 1)]
    stack.run("customers_company")
    assert len(stack.records("invoiced", "customers")) == 3



def test_a_full_refresh_reports_drift_records_on_one_side_only_and_fields_that_differ(stack):
    _seed_both(stack, {"companies": 3}, {})
    stack.run("customers_company")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[0]
    stack.sandboxes.invoiced.seed(companies=1)  # appears in Invoiced only; an incremental run would see it too
    stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Drifted AS"})
    stack.run("customers_company", full_refresh=True)
    drift = dict(stack.sql("SELECT reason, count(*) FROM {s}.sync_log WHERE operation = 'drift' GROUP BY 1"))
    assert drift == {"fields differ: name": 1, "only in invoiced": 1}
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Drifted AS"  # and the run fixed it


def test_a_record_missing_from_a_full_listing_is_confirmed_by_lookup_and_recorded_not_propagated(stack):
    _seed_both(stack, {"companies": 2}, {})
    stack.run("customers_company")
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[0]
    stack.pogo.delete(f"/Customers/{pogo_id}")
    stack.run("customers_company", full_refresh=True)
    assert stack.sql("SELECT state FROM {s}.links WHERE poweroffice_go_id = %s", pogo_id) == [("deleted_in_poweroffice_go",)]
    assert stack.invoiced.get(f"/customers/{inv_id}") is not None
    assert len(stack.records("invoiced", "customers")) == 2


def test_a_backfill_run_resyncs_the_changes_of_its_data_interval(stack):
    import datetime as dt

    from pogo_invoiced_sync.engine.link_store import LinkStore
    from pogo_invoiced_sync.engine.steps import extract
    from pogo_invoiced_sync.engine.flow_mapping import load_mapping
    from pogo_invoiced_sync.operators.sync import _hook
    import psycopg

    _seed_both(stack, {"companies": 2}, {})
    stack.run("customers_company")
    store = LinkStore(lambda: psycopg.connect(stack.dsn))
    mapping = load_mapping("customers_company")
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    result = extract(store, mapping, "poweroffice_go", _hook("poweroffice_go", None).get_conn(), "backfill-run", since_override=start)
    store.close()
    assert result["records"] == 2  # the cursor is past them, the backfill's interval is not
    assert result["since"] == (start - dt.timedelta(seconds=mapping.sides["poweroffice_go"].overlap_seconds)).isoformat()


def test_voiding_a_linked_invoice_is_reported_and_its_order_left_as_it_is(stack):
    stack.sandboxes.pogo.seed(companies=1, sales_orders=1)
    stack.run_all()
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = 'salesorders_invoices'")[0]
    stack.invoiced.post(f"/invoices/{inv_id}/void")
    stack.sandboxes.pogo.clear_counters()
    stack.run("salesorders_invoices")
    reasons = [r for (r,) in stack.sql("SELECT reason FROM {s}.sync_log WHERE operation = 'report'")]
    assert len(reasons) == 1 and "no longer belongs to flow salesorders_invoices" in reasons[0]
    assert stack.writes()["poweroffice_go"] == 0
    assert stack.pogo.get(f"/SalesOrders/{pogo_id}") is not None
