"""Contract tests: the official ``invoiced`` Python client (3.0.0) works against the sandbox unchanged."""
from __future__ import annotations

import uuid

import pytest
from invoiced import errors


def test_customer_list_pages_with_per_page_and_reports_links_and_total_count(client, sandboxes):
    sandboxes.invoiced.seed(persons=25)
    first, meta = client.Customer.list(per_page=10)
    assert len(first) == 10 and meta.total_count == 25
    assert set(meta.links) == {"self", "first", "next", "last"}
    assert meta.links["last"].startswith(sandboxes.invoiced_url) and "page=3" in meta.links["last"]
    third, meta = client.Customer.list(per_page=10, page=3)
    assert len(third) == 5 and "next" not in meta.links and "previous" in meta.links


def test_customer_list_paging_visits_every_customer_once(client, sandboxes):
    sandboxes.invoiced.seed(companies=30, contacts_per_company=0)
    seen, page = [], 1
    while True:
        batch, meta = client.Customer.list(per_page=7, page=page, sort="updated_at asc,name desc")
        seen += [c.id for c in batch]
        if "next" not in meta.links:
            break
        page += 1
    assert len(seen) == len(set(seen)) == 30


def test_customer_create_returns_the_new_customer_with_defaults(client):
    created = client.Customer.create(name="Nord Data AS", email="post@norddata.example", currency="NOK")
    assert created.id and created.object == "customer" and created.number == "CUST-0001"
    assert (created.type, created.country, created.currency) == ("company", "NO", "nok")


def test_customer_retrieve_returns_what_was_stored(client):
    created = client.Customer.create(name="Polar Regnskap AS", city="Tromsø")
    fetched = client.Customer.retrieve(created.id)
    assert fetched.city == "Tromsø" and fetched.id == created.id


def test_customer_save_patches_the_changed_keys(client, sandboxes):
    created = client.Customer.create(name="Viking Transport AS")
    created.city = "Bergen"
    assert created.save() is True
    assert created.city == "Bergen"
    assert client.Customer.retrieve(created.id).city == "Bergen"
    assert sandboxes.invoiced.counters()["routes"]["PATCH /customers/{id}"] == 1


def test_customer_delete_returns_true_and_the_customer_is_gone(client):
    created = client.Customer.create(name="Bris Design AS")
    assert created.delete() is True
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.Customer.retrieve(created.id)
    assert caught.value.status_code == 404


def test_contacts_are_created_listed_and_retrieved_through_customer_contacts(client):
    owner = client.Customer.create(name="Aurora Energi AS")
    made = owner.contacts().create(name="Kari Nordmann", email="kari@aurora.example")
    listed, meta = owner.contacts().list()
    assert [c.id for c in listed] == [made.id] and meta.total_count == 1
    assert owner.contacts().retrieve(made.id).email == "kari@aurora.example"


def test_invoice_create_computes_totals_and_void_marks_it_voided(client):
    owner = client.Customer.create(name="Skog Marin AS", currency="SEK")
    invoice = client.Invoice.create(customer=owner.id, items=[{"name": "Konsulenttime", "quantity": 3,
                                                                 "unit_cost": 1250}])
    assert (invoice.currency, invoice.total, invoice.balance, invoice.status) == ("sek", 3750.0, 3750.0, "not_sent")
    assert invoice.void() is True
    assert (invoice.status, invoice.balance) == ("voided", 0.0)


def test_create_with_an_idempotency_key_returns_the_first_customer_again(client, sandboxes):
    key = uuid.uuid4().hex
    one = client.Customer.create(idempotency_key=key, name="Once AS")
    two = client.Customer.create(idempotency_key=key, name="Once AS")
    assert one.id == two.id and len(sandboxes.invoiced.records("customers")) == 1


def test_a_wrong_api_key_raises_authentication_error(client):
    client.api_key = "wrong-key-0000"
    with pytest.raises(errors.AuthenticationError) as caught:
        client.Customer.list()
    assert caught.value.status_code == 401 and "wro********000" in str(caught.value)


def test_a_validation_error_raises_invalid_request_error_with_the_param(client):
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.Customer.create(email="kari@example.com")
    assert caught.value.status_code == 400
    assert caught.value.error == {"type": "invalid_request", "message": "Name is missing", "param": "name"}


def test_a_missing_customer_raises_invalid_request_error_with_404(client):
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.Customer.retrieve(123)
    assert caught.value.status_code == 404 and caught.value.error["message"] == "Customer was not found: 123"


def test_a_429_raises_rate_limit_error(client, sandboxes):
    sandboxes.invoiced.faults(burst_429=1)
    with pytest.raises(errors.RateLimitError) as caught:
        client.Customer.list()
    assert caught.value.error["type"] == "rate_limit_error"


def test_a_server_error_raises_api_error(client, sandboxes):
    sandboxes.invoiced.faults(error_rate=1.0)
    with pytest.raises(errors.ApiError) as caught:
        client.Customer.list()
    assert caught.value.status_code == 503 and caught.value.error["type"] == "api_error"
