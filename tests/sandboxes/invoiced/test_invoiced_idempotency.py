"""Idempotency-Key: POST/PATCH only, 6 to 64 characters, first response replayed per API key."""
from __future__ import annotations

import uuid

import pytest


def test_a_repeated_post_with_the_same_key_replays_the_first_response(api, sandboxes):
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/customers", json={"name": "Once"}, headers=headers)
    second = api.post("/customers", json={"name": "Once"}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201) and first.json() == second.json()
    assert len(sandboxes.invoiced.records("customers")) == 1


def test_an_error_response_is_replayed_too(api, sandboxes):
    headers = {"Idempotency-Key": "key-for-an-error"}
    assert api.post("/customers", json={}, headers=headers).status_code == 400
    replay = api.post("/customers", json={"name": "Now valid"}, headers=headers)
    assert replay.status_code == 400 and replay.json()["message"] == "Name is missing"
    assert sandboxes.invoiced.records("customers") == []


def test_the_key_is_not_scoped_to_the_endpoint_or_body(api, customer):
    headers = {"Idempotency-Key": "shared-key-1"}
    created = api.post("/customers", json={"name": "A"}, headers=headers).json()
    replay = api.patch(f"/customers/{customer['id']}", json={"name": "B"}, headers=headers)
    assert replay.status_code == 201 and replay.json() == created


def test_a_patch_with_a_key_is_replayed(api, customer):
    headers = {"Idempotency-Key": "patch-key-1"}
    first = api.patch(f"/customers/{customer['id']}", json={"city": "Oslo"}, headers=headers).json()
    api.patch(f"/customers/{customer['id']}", json={"city": "Bergen"})
    replay = api.patch(f"/customers/{customer['id']}", json={"city": "Oslo"}, headers=headers).json()
    assert replay == first and api.get(f"/customers/{customer['id']}").json()["city"] == "Bergen"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_key_on_other_methods_is_refused(api, customer, method):
    response = api(method, f"/customers/{customer['id']}", headers={"Idempotency-Key": "abcdef"})
    assert response.status_code == 400 and response.json()["message"] == \
        f"Unsupported method: {method}. Idempotency keys can only be used with POST and PATCH requests."


@pytest.mark.parametrize("key,message", [
    ("abcde", "Idempotency key is too short. Must be at least 6 characters long."),
    ("k" * 65, "Idempotency key is too long. Must be no longer than 64 characters."),
])
def test_keys_outside_6_to_64_characters_are_refused(api, key, message):
    response = api.post("/customers", json={"name": "A"}, headers={"Idempotency-Key": key})
    assert response.status_code == 400 and response.json()["message"] == message
