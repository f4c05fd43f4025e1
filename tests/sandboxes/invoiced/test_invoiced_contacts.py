"""Contacts under /customers/:id/contacts: defaults, strict bodies, the 100 limit and ownership."""
from __future__ import annotations


def test_a_contact_gets_the_defaults_and_its_customers_country(api):
    owner = api.create("/customers", {"name": "Bris Data AB", "country": "SE"})
    contact = api.create(f"/customers/{owner['id']}/contacts", {"name": "Anna Karlsson"})
    assert (contact["object"], contact["primary"], contact["sms_enabled"], contact["country"]) == \
        ("contact", True, False, "SE")
    assert contact["customer"] == owner["id"]


def test_a_contact_without_a_name_is_refused(api, customer):
    response = api.post(f"/customers/{customer['id']}/contacts", json={"email": "kari@example.com"})
    assert response.status_code == 400 and response.json()["message"] == "Name is missing"


def test_an_unknown_key_in_a_contact_body_is_refused(api, customer):
    response = api.post(f"/customers/{customer['id']}/contacts", json={"name": "Kari", "metadata": {"a": "b"}})
    assert response.status_code == 400 and response.json()["param"] == "request"
    assert response.json()["message"].startswith('The option "metadata" does not exist.')


def test_a_customer_can_have_at_most_100_contacts(api, customer):
    for i in range(100):
        api.create(f"/customers/{customer['id']}/contacts", {"name": f"Contact {i}"})
    response = api.post(f"/customers/{customer['id']}/contacts", json={"name": "One too many"})
    assert response.status_code == 400
    assert response.json()["message"] == "The maximum number of contacts (100) per customer has been reached."


def test_contacts_of_an_unknown_customer_are_404(api):
    response = api.get("/customers/42/contacts")
    assert response.status_code == 404 and response.json()["message"] == "Customer was not found: 42"


def test_a_contact_of_another_customer_is_404(api, customer):
    other = api.create("/customers", {"name": "Other"})
    contact = api.create(f"/customers/{other['id']}/contacts", {"name": "Kari"})
    response = api.get(f"/customers/{customer['id']}/contacts/{contact['id']}")
    assert response.status_code == 404 and response.json()["message"] == f"Contact was not found: {contact['id']}"


def test_a_contact_is_patched_filtered_and_deleted(api, customer):
    base = f"/customers/{customer['id']}/contacts"
    kari = api.create(base, {"name": "Kari", "email": "kari@example.com"})
    api.create(base, {"name": "Ola"})
    assert api.patch(f"{base}/{kari['id']}", json={"title": "CFO"}).json()["title"] == "CFO"
    assert [c["name"] for c in api.get(f"{base}?filter[email]=kari@example.com").json()] == ["Kari"]
    assert api.delete(f"{base}/{kari['id']}").status_code == 204
    assert api.get(base).headers["X-Total-Count"] == "1"
