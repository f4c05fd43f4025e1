"""Invoices: required and immutable customer, currency, numbering, totals, status, voiding and closed documents."""
from __future__ import annotations

import time

import pytest

LINE = {"name": "Konsulenttime", "quantity": 2, "unit_cost": 1250}


def error_of(response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()


@pytest.fixture
def invoice(api, customer) -> dict:
    """An issued, unpaid invoice of 2,500."""
    return api.create("/invoices", {"customer": customer["id"], "items": [LINE]})


def test_an_invoice_without_a_customer_is_refused(api):
    assert error_of(api.post("/invoices", json={"items": [LINE]})) == \
        {"type": "invalid_request", "message": "Customer missing", "param": "customer"}


def test_an_invoice_for_an_unknown_customer_is_refused(api):
    assert error_of(api.post("/invoices", json={"customer": 4242}))["message"] == "No such customer: 4242"


def test_the_customer_of_an_invoice_cannot_be_changed(api, invoice):
    other = api.create("/customers", {"name": "Other"})
    error = error_of(api.patch(f"/invoices/{invoice['id']}", json={"customer": other["id"]}))
    assert error == {"type": "invalid_request", "param": "customer",
                     "message": "Invalid request parameter `customer`. The customer cannot be modified."}


def test_the_currency_defaults_to_the_customers_then_the_accounts(api):
    euro = api.create("/customers", {"name": "Euro", "currency": "EUR"})
    plain = api.create("/customers", {"name": "Plain"})
    assert api.create("/invoices", {"customer": euro["id"]})["currency"] == "eur"
    assert api.create("/invoices", {"customer": plain["id"]})["currency"] == "nok"
    assert api.create("/invoices", {"customer": plain["id"], "currency": "USD"})["currency"] == "usd"


def test_invoice_numbers_are_generated_and_unique(api, customer):
    first = api.create("/invoices", {"customer": customer["id"]})
    assert first["number"] == "INV-0001"
    error = error_of(api.post("/invoices", json={"customer": customer["id"], "number": "inv-0001"}))
    assert error["message"] == "The given invoice number has already been taken: inv-0001"


def test_amounts_subtotal_total_and_balance_are_computed(api, customer):
    created = api.create("/invoices", {"customer": customer["id"], "items": [LINE, {"name": "Frakt", "unit_cost": 150}],
                                       "taxes": [{"amount": 662.5}]})
    assert [i["amount"] for i in created["items"]] == [2500.0, 150.0]
    assert (created["subtotal"], created["total"], created["balance"]) == (2650.0, 3312.5, 3312.5)
    assert (created["status"], created["paid"], created["closed"]) == ("not_sent", False, False)


def test_an_issued_invoice_with_nothing_to_pay_is_paid_and_closed_at_once(api, customer):
    created = api.create("/invoices", {"customer": customer["id"]})
    assert (created["total"], created["paid"], created["closed"], created["status"]) == (0.0, True, True, "paid")


def test_an_invoice_created_from_a_form_body_has_its_items(api, customer):
    response = api.post("/invoices", data={"customer": customer["id"], "items[0][name]": "Frakt",
                                           "items[0][quantity]": "3", "items[0][unit_cost]": "150", "draft": "1"})
    assert response.status_code == 201
    assert (response.json()["total"], response.json()["status"]) == (450.0, "draft")


def test_a_draft_can_be_issued_but_an_issued_invoice_cannot_become_a_draft_again(api, customer):
    draft = api.create("/invoices", {"customer": customer["id"], "draft": True, "items": [LINE]})
    issued = api.patch(f"/invoices/{draft['id']}", json={"draft": False}).json()
    assert issued["status"] == "not_sent"
    assert error_of(api.patch(f"/invoices/{draft['id']}", json={"draft": True}))["message"] == \
        "Cannot save as a draft because the document has already been issued."


def test_marking_an_invoice_sent_makes_its_status_sent(api, invoice):
    assert api.patch(f"/invoices/{invoice['id']}", json={"sent": True}).json()["status"] == "sent"


def test_an_invoice_past_its_due_date_is_past_due(api, customer):
    created = api.create("/invoices", {"customer": customer["id"], "items": [LINE],
                                       "due_date": int(time.time()) - 86_400})
    assert created["status"] == "past_due"


def test_the_due_date_follows_the_payment_terms(api, customer):
    created = api.create("/invoices", {"customer": customer["id"], "date": 1_750_000_000, "payment_terms": "NET 14"})
    assert created["due_date"] == 1_750_000_000 + 14 * 86_400


def test_patching_items_replaces_the_list_and_keeps_ids_of_lines_sent_back(api, customer):
    created = api.create("/invoices", {"customer": customer["id"], "draft": True,
                                       "items": [LINE, {"name": "Frakt", "unit_cost": 150}]})
    kept = created["items"][0]
    items = [{"id": kept["id"], "quantity": 4}, {"name": "Opplæring", "unit_cost": 8900}]
    updated = api.patch(f"/invoices/{created['id']}", json={"items": items}).json()
    assert [i["id"] for i in updated["items"]][0] == kept["id"] and len(updated["items"]) == 2
    assert [i["name"] for i in updated["items"]] == ["Konsulenttime", "Opplæring"]
    assert updated["total"] == 4 * 1250 + 8900


def test_voiding_sets_status_voided_and_balance_zero(api, invoice):
    voided = api.post(f"/invoices/{invoice['id']}/void", json={})
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["balance"], voided.json()["total"]) == ("voided", 0.0, 2500.0)


def test_a_second_void_is_refused(api, invoice):
    api.post(f"/invoices/{invoice['id']}/void", json={})
    assert error_of(api.post(f"/invoices/{invoice['id']}/void", json={}))["message"] == \
        "This document has already been voided."


def test_a_voided_invoice_cannot_be_edited(api, invoice):
    api.post(f"/invoices/{invoice['id']}/void")
    assert error_of(api.patch(f"/invoices/{invoice['id']}", json={"notes": "x"}))["message"] == \
        "Your changes cannot be saved because this document is voided."


def test_a_closed_invoice_cannot_be_edited_unless_the_same_patch_reopens_it(api, invoice):
    api.patch(f"/invoices/{invoice['id']}", json={"closed": True})
    assert error_of(api.patch(f"/invoices/{invoice['id']}", json={"notes": "x"}))["message"] == \
        ("Your changes cannot be saved because this document is closed. "
         "Please re-open the document to make any changes.")
    reopened = api.patch(f"/invoices/{invoice['id']}", json={"closed": False, "notes": "x"})
    assert reopened.status_code == 200 and reopened.json()["notes"] == "x"


def test_a_paid_invoice_cannot_be_voided_or_deleted(api, sandboxes):
    sandboxes.invoiced.seed(companies=3, invoices=60)
    paid = next(i for i in sandboxes.invoiced.records("invoices") if i["status"] == "paid" and i["total"] > 0)
    assert error_of(api.post(f"/invoices/{paid['id']}/void"))["message"] == \
        "This invoice cannot be voided because it has a payment applied."
    assert error_of(api.delete(f"/invoices/{paid['id']}"))["param"] == "voided"


def test_an_invoice_is_deleted_with_204(api, invoice):
    assert api.delete(f"/invoices/{invoice['id']}").status_code == 204
    assert api.get(f"/invoices/{invoice['id']}").status_code == 404


def test_read_only_invoice_fields_are_refused_as_mass_assignment(api, invoice):
    assert error_of(api.patch(f"/invoices/{invoice['id']}", json={"total": 1}))["message"] == \
        "Mass assignment of total on Invoice is not allowed"


def test_expand_customer_embeds_the_customer_object(api, invoice, customer):
    fetched = api.get(f"/invoices/{invoice['id']}", params={"expand": "customer"}).json()
    assert fetched["customer"]["id"] == customer["id"] and fetched["customer"]["object"] == "customer"


def test_a_customer_object_without_an_id_is_created_with_the_invoice(api, sandboxes):
    created = api.create("/invoices", {"customer": {"name": "Inline AS", "currency": "DKK"}, "draft": True})
    assert created["currency"] == "dkk"
    assert [c["name"] for c in sandboxes.invoiced.records("customers", id=created["customer"])] == ["Inline AS"]
