"""Customer validation, numbering, metadata rules and deletion."""
from __future__ import annotations

import pytest


def error_of(response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()


def test_a_customer_without_a_name_is_refused_with_param_name(api):
    assert error_of(api.post("/customers", json={"city": "Oslo"})) == \
        {"type": "invalid_request", "message": "Name is missing", "param": "name"}


def test_a_name_longer_than_255_characters_is_refused(api):
    assert error_of(api.post("/customers", json={"name": "x" * 256}))["param"] == "name"


def test_numbers_are_generated_in_sequence_skipping_numbers_taken_by_hand(api):
    api.create("/customers", {"name": "Manual", "number": "CUST-0002"})
    numbers = [api.create("/customers", {"name": n})["number"] for n in ("A", "B")]
    assert numbers == ["CUST-0001", "CUST-0003"]


def test_a_number_is_unique_ignoring_case_and_surrounding_spaces(api):
    api.create("/customers", {"name": "First", "number": "PO-10001"})
    error = error_of(api.post("/customers", json={"name": "Second", "number": " po-10001 "}))
    assert error == {"type": "invalid_request", "param": "number",
                     "message": "The given customer number has already been taken: po-10001"}


def test_a_customer_can_keep_its_own_number_on_patch(api, customer):
    response = api.patch(f"/customers/{customer['id']}", json={"number": customer["number"], "name": "Renamed"})
    assert response.status_code == 200 and response.json()["name"] == "Renamed"


@pytest.mark.parametrize("kind", ["company", "person", "government", "non_profit"])
def test_the_allowed_customer_types_are_accepted(api, kind):
    assert api.create("/customers", {"name": "X", "type": kind})["type"] == kind


def test_an_unknown_customer_type_is_refused(api):
    assert error_of(api.post("/customers", json={"name": "X", "type": "partnership"}))["message"] == \
        "Type must be one of the allowed values"


def test_the_country_is_upper_cased_validated_and_defaults_to_the_account_country(api):
    assert api.create("/customers", {"name": "A", "country": "se"})["country"] == "SE"
    assert api.create("/customers", {"name": "B"})["country"] == "NO"
    assert error_of(api.post("/customers", json={"name": "C", "country": "XX"})) == \
        {"type": "invalid_request", "message": "Country is invalid", "param": "country"}


def test_the_currency_is_stored_lower_case_and_validated_without_a_param(api):
    assert api.create("/customers", {"name": "A", "currency": "EUR"})["currency"] == "eur"
    assert error_of(api.post("/customers", json={"name": "B", "currency": "XYZ"})) == \
        {"type": "invalid_request", "message": "Invalid currency code: XYZ"}


def test_an_invalid_email_is_refused(api):
    assert error_of(api.post("/customers", json={"name": "A", "email": "not-an-email"})) == \
        {"type": "invalid_request", "message": "Email must be a valid email address", "param": "email"}


@pytest.mark.parametrize("key", ["id", "object", "created_at", "updated_at", "statement_pdf_url"])
def test_read_only_keys_in_a_body_are_refused_as_mass_assignment(api, customer, key):
    response = api.patch(f"/customers/{customer['id']}", json={key: 1})
    assert error_of(response)["message"] == f"Mass assignment of {key} on Customer is not allowed"


def test_unknown_body_keys_on_customers_are_ignored(api):
    assert "shoe_size" not in api.create("/customers", {"name": "A", "shoe_size": 44})


def test_a_form_encoded_create_with_bracketed_metadata_works(api):
    response = api.post("/customers", data={"name": "Form AS", "metadata[pogo_id]": "7", "autopay": "0"})
    assert response.status_code == 201
    assert response.json()["metadata"] == {"pogo_id": "7"} and response.json()["autopay"] is False


def test_metadata_values_are_stored_as_strings_but_echoed_as_sent(api):
    created = api.create("/customers", {"name": "A", "metadata": {"n": 5, "flag": True}})
    assert created["metadata"] == {"n": 5, "flag": True}
    assert api.get(f"/customers/{created['id']}").json()["metadata"] == {"n": "5", "flag": "1"}


def test_patching_metadata_replaces_the_whole_map(api):
    created = api.create("/customers", {"name": "A", "metadata": {"pogo_id": "1", "source": "pogo"}})
    api.patch(f"/customers/{created['id']}", json={"metadata": {"pogo_id": "2"}})
    assert api.get(f"/customers/{created['id']}").json()["metadata"] == {"pogo_id": "2"}


def test_a_patch_without_metadata_leaves_it_alone(api):
    created = api.create("/customers", {"name": "A", "metadata": {"pogo_id": "1"}})
    api.patch(f"/customers/{created['id']}", json={"city": "Oslo"})
    assert api.get(f"/customers/{created['id']}").json()["metadata"] == {"pogo_id": "1"}


def test_more_than_ten_metadata_keys_are_refused(api):
    error = error_of(api.post("/customers", json={"name": "A", "metadata": {f"k{i}": "v" for i in range(11)}}))
    assert error == {"type": "invalid_request", "param": "metadata",
                     "message": "There can only be up to 10 metadata values. 11 values were provided."}


def test_a_metadata_key_over_40_characters_is_refused(api):
    key = "k" * 41
    assert error_of(api.post("/customers", json={"name": "A", "metadata": {key: "v"}}))["message"] == \
        f"The `{key}` metadata key exceeds the 40 character limit."


def test_a_metadata_value_over_255_characters_is_refused(api):
    error = error_of(api.post("/customers", json={"name": "A", "metadata": {"k": "v" * 256}}))
    assert error["message"] == "The provided value for metadata.k exceeds the 255 character limit."


def test_a_null_metadata_value_is_refused(api):
    error = error_of(api.post("/customers", json={"name": "A", "metadata": {"k": None}}))
    assert error["param"] == "metadata" and "invalid type" in error["message"]


def test_a_customer_with_invoices_cannot_be_deleted(api, customer):
    api.create("/invoices", {"customer": customer["id"], "draft": True})
    assert error_of(api.delete(f"/customers/{customer['id']}"))["message"] == \
        "Customers with transactions cannot be deleted"


def test_a_customer_whose_invoices_were_deleted_can_be_deleted(api, customer):
    invoice = api.create("/invoices", {"customer": customer["id"], "draft": True})
    assert api.delete(f"/invoices/{invoice['id']}").status_code == 204
    assert api.delete(f"/customers/{customer['id']}").status_code == 204


def test_deleting_a_customer_removes_its_contacts(api, customer, sandboxes):
    api.create(f"/customers/{customer['id']}/contacts", {"name": "Kari"})
    api.delete(f"/customers/{customer['id']}")
    assert sandboxes.invoiced.records("contacts") == []
