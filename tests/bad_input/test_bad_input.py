"""Bad input, end to end (issue 5 §2): each bad record gets a clear reason of its own in the sync log, and the
other records of the same run still synchronise.

Bad data is created through the sandbox APIs where one side stores what the other refuses; where both sides
refuse a value (countries: both check ISO 3166-1), the answers of one side are rewritten by the sandbox fault
``set_fields``, as an API returning such a value would. A refusal by the other API (``PermanentApiError``) does
not fail the DAG run; a failure that may pass (retries ran out) fails the upsert task so that Airflow retries it.
"""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def _failures(stack) -> list[tuple]:
    """(PowerOffice Go id, Invoiced id, direction, operation, reason) of every failed sync-log entry."""
    return stack.sql("SELECT poweroffice_go_id, invoiced_id, direction, operation, reason FROM {s}.v_failures "
                     "ORDER BY logged_at")


def _links(stack, flow: str) -> dict[str, str]:
    return dict(stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links WHERE flow = %s", flow))


def _carried(records: list[dict]) -> set[str]:
    """PowerOffice Go ids carried by Invoiced records (the counterparts the sync created)."""
    return {(r.get("metadata") or {}).get("poweroffice_go_id") for r in records} - {None}


def _person(stack, name: str = "Kari Nordmann", **address) -> dict:
    body = {"name": name, "type": "person", "address1": "Storgata 1", "city": "Oslo", "postal_code": "0150",
            "country": "NO", **address}
    return stack.invoiced.create("/customers", body)


def test_a_country_the_other_side_refuses_is_reported_on_that_record_and_the_rest_syncs(stack):
    stack.sandboxes.pogo.seed(persons=2)
    bad = _person(stack)
    # Both sandboxes check ISO 3166-1 and store no invalid code: Invoiced answers with one, as if it had it.
    stack.sandboxes.invoiced.faults(set_fields={"country": "XK"}, path_pattern="^/customers$", methods=["GET"])
    stack.run("customers_person")
    failures = _failures(stack)
    assert [(f[1], f[2], f[3]) for f in failures] == [(str(bad["id"]), "to_poweroffice_go", "create")]
    assert "CountryCode 'XK' is not a valid ISO 3166-1 alpha-2 country code" in failures[0][4]
    pogo_ids = {str(c["Id"]) for c in stack.records("poweroffice_go", "customers")}
    assert len(pogo_ids) == 2  # nothing was created for the bad record
    assert _carried(stack.records("invoiced", "customers")) == pogo_ids  # both good persons arrived
    assert stack.sql("SELECT dirty FROM {s}.records WHERE system = 'invoiced' AND record_id = %s",
                     str(bad["id"])) == [(True,)]  # kept for the next run


def test_an_empty_name_is_refused_with_the_reason_and_the_rest_syncs(stack):
    stack.sandboxes.invoiced.seed(companies=2)
    blank = stack.invoiced.create("/customers", {"name": "   ", "type": "company"})  # Invoiced stores blanks
    stack.run("customers_company")
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(str(blank["id"]), "create")]
    assert "Name is required" in failures[0][4]
    assert len(stack.records("poweroffice_go", "customers")) == 2
    assert len(_links(stack, "customers_company")) == 2


def test_an_address_line_over_200_characters_is_refused_by_poweroffice_go_and_the_rest_syncs(stack):
    stack.sandboxes.invoiced.seed(persons=1)
    long_line = _person(stack, "Ola Lang", address1="Lang gate " + "x" * 240)  # Invoiced has no such limit
    stack.run("customers_person")
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(str(long_line["id"]), "create")]
    assert "MailAddress.AddressLine1 can not be longer than 200 characters" in failures[0][4]
    assert len(stack.records("poweroffice_go", "customers")) == 1
    assert len(_links(stack, "customers_person")) == 1


def test_a_name_over_255_characters_is_refused_by_invoiced_and_the_rest_syncs(stack):
    stack.sandboxes.pogo.seed(companies=2)
    long_name = stack.pogo.create("/Customers", {"Name": "Langt Navn " + "A" * 300 + " AS", "IsPerson": False,
                                                "InvoiceDeliveryType": "Print"})
    stack.run("customers_company")
    failures = _failures(stack)
    assert [(f[0], f[2], f[3]) for f in failures] == [(str(long_name["Id"]), "to_invoiced", "create")]
    assert "Name must be a string of the proper length (param: name)" in failures[0][4]
    assert len(stack.records("invoiced", "customers")) == 2


def test_a_currency_the_other_side_does_not_know_is_refused_on_that_invoice_and_the_rest_syncs(stack):
    stack.sandboxes.invoiced.seed(companies=1)
    stack.run("customers_company")
    customer = stack.records("invoiced", "customers")[0]["id"]
    # SLL (the old leone) is still valid in Invoiced; PowerOffice Go only knows SLE.
    bad = stack.invoiced.create("/invoices", {"customer": customer, "currency": "sll", "draft": True})
    good = stack.invoiced.create("/invoices", {"customer": customer, "currency": "eur", "draft": True})
    stack.run("salesorders_invoices")
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(str(bad["id"]), "create")]
    assert "CurrencyCode 'SLL' is not a valid ISO 4217 currency code" in failures[0][4]
    orders = stack.records("poweroffice_go", "sales_orders")
    assert [(o["ExternalImportReference"], o["CurrencyCode"]) for o in orders] == [
        (f"invoiced-invoice-{good['id']}", "EUR")]


def test_a_create_colliding_with_a_unique_key_on_the_target_is_refused_and_links_nothing(stack):
    stack.sandboxes.invoiced.seed(companies=2)
    stack.run("customers_company")
    taken = stack.records("invoiced", "customers")[0]
    newcomer = stack.invoiced.create("/customers", {"name": "Nykommer AS", "type": "company"})
    # By hand, someone put the newcomer's reference on a PowerOffice Go customer already linked elsewhere:
    # PowerOffice Go keeps ExternalImportReference unique, so creating the newcomer's counterpart collides.
    holder = next(p for p, i in _links(stack, "customers_company").items() if i == str(taken["id"]))
    stack.pogo.patch(f"/Customers/{holder}", {"ExternalImportReference": f"invoiced-customer-{newcomer['id']}"})
    stack.invoiced.update(f"/customers/{taken['id']}", {"name": "Endret AS"})
    stack.run("customers_company")
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(str(newcomer["id"]), "create")]
    assert "already" in failures[0][4] and holder in failures[0][4]
    links = _links(stack, "customers_company")
    assert links[holder] == str(taken["id"])  # the existing pair is not taken over by the newcomer
    assert str(newcomer["id"]) not in links.values()
    assert stack.pogo.get(f"/Customers/{holder}")["Name"] == "Endret AS"  # the rest of the run synced


def test_an_order_of_a_customer_that_cannot_be_linked_waits_with_the_reason_run_after_run(stack):
    stack.sandboxes.pogo.seed(companies=1, sales_orders=1)
    refused = stack.pogo.create("/Customers", {"Name": "N" * 300, "IsPerson": False,
                                                "InvoiceDeliveryType": "Print"})  # Invoiced refuses it
    waiting = stack.pogo.create("/SalesOrders/Complete", {"CustomerId": refused["Id"], "SalesOrderLines": []})
    for _cycle in range(2):
        stack.run_all()
        rows = stack.sql("SELECT system, record_id, reason FROM {s}.v_waiting")
        assert [(r[0], r[1]) for r in rows] == [("poweroffice_go", waiting["Id"])]
        assert f"PowerOffice Go customer {refused['Id']} is not linked to Invoiced yet" in rows[0][2]
    invoices = stack.records("invoiced", "invoices")
    assert len(invoices) == 1 and _carried(invoices) != {waiting["Id"]}  # the other order went through
    assert [f[0] for f in _failures(stack)] == [str(refused["Id"])] * 2  # the customer: one reason per run


def test_a_customer_switched_from_company_to_person_is_reported_not_moved(stack):
    stack.sandboxes.pogo.seed(companies=2)
    stack.run_all()
    switched, other = sorted(_links(stack, "customers_company"))
    stack.pogo.patch(f"/Customers/{switched}", {"IsPerson": True, "FirstName": "Kari", "LastName": "Nordmann"})
    stack.pogo.patch(f"/Customers/{other}", {"Name": "Fortsatt Firma AS"})
    counterparts_before = stack.records("invoiced", "customers")
    stack.run_all()
    reports = stack.sql("SELECT flow, poweroffice_go_id, reason FROM {s}.sync_log WHERE operation = 'report' "
                        "ORDER BY flow")
    assert [(r[0], r[1]) for r in reports] == [("customers_company", switched), ("customers_person", switched)]
    assert "no longer belongs to flow customers_company" in reports[0][2]
    assert "linked in another flow" in reports[1][2]
    invoiced_after = {c["id"]: c for c in stack.records("invoiced", "customers")}
    assert len(invoiced_after) == len(counterparts_before)  # no person counterpart created
    linked = _links(stack, "customers_company")
    assert invoiced_after[int(linked[switched])]["type"] == "company"  # nor the company changed behind a person
    assert invoiced_after[int(linked[other])]["name"] == "Fortsatt Firma AS"
    assert _links(stack, "customers_person") == {}


def test_a_non_json_answer_to_an_update_fails_that_record_only_and_the_next_run_retries_it(stack, quick_retries):
    stack.sandboxes.pogo.seed(companies=2)
    stack.run("customers_company")
    links = _links(stack, "customers_company")
    bad_pogo, good_pogo = sorted(links)
    for pogo_id in links:
        stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": f"Nytt navn {pogo_id} AS"})
    stack.sandboxes.invoiced.faults(malformed_rate=1.0, path_pattern=f"^/customers/{links[bad_pogo]}$",
                                    methods=["PATCH"])
    stack.run("customers_company", expect="failed")  # retries ran out: the upsert task fails, to be retried
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(links[bad_pogo], "update")]
    assert "response body is not JSON" in failures[0][4]
    assert stack.invoiced.get(f"/customers/{links[good_pogo]}")["name"] == f"Nytt navn {good_pogo} AS"
    stack.sandboxes.invoiced.faults()
    stack.run("customers_company")
    assert stack.invoiced.get(f"/customers/{links[bad_pogo]}")["name"] == f"Nytt navn {bad_pogo} AS"
    assert stack.sql("SELECT count(*) FROM {s}.records WHERE dirty")[0][0] == 0


def test_a_non_json_answer_to_a_create_is_retried_next_run_without_a_duplicate(stack, quick_retries):
    stack.sandboxes.pogo.seed(companies=2)
    stack.sandboxes.invoiced.faults(malformed_rate=1.0, path_pattern="^/customers$", methods=["POST"])
    stack.run("customers_company", expect="failed")
    failures = _failures(stack)
    assert len(failures) == 2 and all("response body is not JSON" in f[4] for f in failures)
    stack.sandboxes.invoiced.faults()
    stack.run("customers_company")
    assert len(stack.records("invoiced", "customers")) == 2  # the answers were lost, not the creates
    assert len(_links(stack, "customers_company")) == 2


def test_a_listed_record_without_its_id_is_reported_and_the_rest_syncs(stack):
    stack.sandboxes.pogo.seed(companies=2)
    _person(stack, "Uten Id")  # in the person flow: the company flow lists companies only
    stack.invoiced.create("/customers", {"name": "Uten Id AS", "type": "company"})
    stack.sandboxes.invoiced.faults(strip_fields=["id"], path_pattern="^/customers$", methods=["GET"])
    stack.run("customers_company")
    failures = _failures(stack)
    assert len(failures) == 1 and failures[0][3] == "reject"
    assert all("invoiced record without id" in f[4] for f in failures)
    assert len(stack.records("invoiced", "customers")) == 4  # the two PowerOffice Go companies arrived


def test_a_listed_record_missing_a_mapped_field_is_rejected_not_read_as_empty(stack):
    stack.sandboxes.pogo.seed(persons=1)
    stack.run("customers_person")
    pogo_id, inv_id = next(iter(_links(stack, "customers_person").items()))
    line = stack.pogo.get(f"/Customers/{pogo_id}")["MailAddress"]["AddressLine1"]
    time.sleep(1.1)  # a new second: the edit is listed as changed
    stack.invoiced.update(f"/customers/{inv_id}", {"city": "Bergen"})
    stack.sandboxes.invoiced.faults(strip_fields=["address1"], path_pattern="^/customers$", methods=["GET"])
    stack.run("customers_person")
    assert stack.pogo.get(f"/Customers/{pogo_id}")["MailAddress"]["AddressLine1"] == line  # not wiped
    failures = _failures(stack)
    assert [(f[1], f[3]) for f in failures] == [(inv_id, "reject")]
    assert "address1" in failures[0][4]
    stack.sandboxes.invoiced.faults()
    stack.run("customers_person")  # the edit was not lost with the bad answer
    assert stack.pogo.get(f"/Customers/{pogo_id}")["MailAddress"]["City"] == "Bergen"
